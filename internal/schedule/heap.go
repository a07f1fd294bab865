package schedule

// mheap is a min-heap of machines ordered by (load, ID). Every machine
// knows the heaps it is in, so a load change is one sift per heap.
type mheap struct{ items []*hentry }

type hentry struct{ m, i int32 } // machine, position in the heap

type membership struct {
	h *mheap
	e *hentry
}

// heapFor returns the heap of the machines matching c (nil: all machines),
// building it on first use. Draining machines are in no heap (rule 12):
// they take no unit, so walks never visit them.
func (st *state) heapFor(c *class) *mheap {
	if c == nil {
		c = st.all
	}
	if c.h != nil {
		return c.h
	}
	h := &mheap{}
	for m := range st.ms {
		if st.ms[m].draining {
			continue
		}
		if c == st.all || c.matches(st.ms[m].meta) {
			e := &hentry{m: int32(m), i: int32(len(h.items))}
			h.items = append(h.items, e)
			st.ms[m].memb = append(st.ms[m].memb, membership{h, e})
		}
	}
	for i := len(h.items)/2 - 1; i >= 0; i-- {
		st.down(h, i)
	}
	c.h, c.n = h, len(h.items)
	return h
}

func (st *state) hless(h *mheap, i, j int) bool { return st.less(h.items[i].m, h.items[j].m) }

func (st *state) hswap(h *mheap, i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].i, h.items[j].i = int32(i), int32(j)
}

func (st *state) up(h *mheap, i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !st.hless(h, i, p) {
			return
		}
		st.hswap(h, i, p)
		i = p
	}
}

func (st *state) down(h *mheap, i int) bool {
	start, n := i, len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && st.hless(h, r, l) {
			c = r
		}
		if !st.hless(h, c, i) {
			break
		}
		st.hswap(h, i, c)
		i = c
	}
	return i > start
}

func (st *state) fix(h *mheap, i int) {
	if !st.down(h, i) {
		st.up(h, i)
	}
}

// walk calls f on the machines of h in (load, ID) order until f returns
// true, without changing h: a second heap holds the frontier of positions
// (each popped node's children), so visiting k machines costs O(k log k).
func (st *state) walk(h *mheap, f func(m int32) bool) {
	if len(h.items) == 0 {
		return
	}
	aux := append(st.aux[:0], 0)
	less := func(a, b int32) bool { return st.less(h.items[a].m, h.items[b].m) }
	for len(aux) > 0 {
		top := aux[0]
		last := len(aux) - 1
		aux[0] = aux[last]
		aux = aux[:last]
		for i := 0; ; { // sift down
			l := 2*i + 1
			if l >= len(aux) {
				break
			}
			c := l
			if r := l + 1; r < len(aux) && less(aux[r], aux[l]) {
				c = r
			}
			if !less(aux[c], aux[i]) {
				break
			}
			aux[i], aux[c] = aux[c], aux[i]
			i = c
		}
		if f(h.items[top].m) {
			break
		}
		for _, ch := range [2]int32{2*top + 1, 2*top + 2} {
			if int(ch) >= len(h.items) {
				continue
			}
			aux = append(aux, ch)
			for i := len(aux) - 1; i > 0; { // sift up
				p := (i - 1) / 2
				if !less(aux[i], aux[p]) {
					break
				}
				aux[i], aux[p] = aux[p], aux[i]
				i = p
			}
		}
	}
	st.aux = aux[:0]
}
