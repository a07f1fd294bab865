package store_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"

	"github.com/fleetd/fleet/internal/etcdserver/etcdtest"
	"github.com/fleetd/fleet/internal/fleet"
	"github.com/fleetd/fleet/internal/store"
	"github.com/fleetd/fleet/internal/store/etcdkv"
)

// peerProxy forwards TCP connections to a member's peer listener until
// vanish: from then on it accepts connections and reads what is sent but
// never answers, like a host that is gone (no reset, no reply).
type peerProxy struct {
	ln     net.Listener
	target string

	mu       sync.Mutex
	vanished bool
	conns    []net.Conn // all, closed by close
	upstream []net.Conn
}

func newPeerProxy(t *testing.T, target string) *peerProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &peerProxy{ln: ln, target: target}
	go p.serve()
	t.Cleanup(p.close)
	return p
}

func (p *peerProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *peerProxy) isVanished() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.vanished
}

func (p *peerProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, c)
		vanished := p.vanished
		p.mu.Unlock()
		if vanished {
			go io.Copy(io.Discard, c)
			continue
		}
		up, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, up)
		p.upstream = append(p.upstream, up)
		p.mu.Unlock()
		go func() {
			_, _ = io.Copy(up, c)
			if p.isVanished() {
				_, _ = io.Copy(io.Discard, c)
				return
			}
			up.Close()
			c.Close()
		}()
		go func() {
			_, _ = io.Copy(c, up)
			if !p.isVanished() {
				c.Close()
				up.Close()
			}
		}()
	}
}

// vanish cuts every connection from the member, leaving the callers'
// side open and unanswered.
func (p *peerProxy) vanish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.vanished = true
	for _, c := range p.upstream {
		c.Close()
	}
}

func (p *peerProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// leaderLossCluster is a 3-member etcd on 127.0.0.1 whose members reach
// each other through peerProxies, with etcd's default raft timing halved
// (ticks of 50 ms, elections after 500 ms).
type leaderLossCluster struct {
	members []*embed.Etcd
	proxies []*peerProxy
	clients []string
}

func startLeaderLossCluster(t *testing.T, ctx context.Context) *leaderLossCluster {
	t.Helper()
	c := &leaderLossCluster{}
	var peers, initial []string
	for i := range 3 {
		peer := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		p := newPeerProxy(t, strings.TrimPrefix(peer, "http://"))
		peers = append(peers, peer)
		c.proxies = append(c.proxies, p)
		c.clients = append(c.clients, fmt.Sprintf("http://127.0.0.1:%d", freePort(t)))
		initial = append(initial, fmt.Sprintf("m%d=%s", i+1, p.url()))
	}
	c.members = make([]*embed.Etcd, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	for i := range 3 {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i+1)
		cfg.Dir = t.TempDir()
		cfg.ListenClientUrls = []url.URL{mustURL(t, c.clients[i])}
		cfg.AdvertiseClientUrls = cfg.ListenClientUrls
		cfg.ListenPeerUrls = []url.URL{mustURL(t, peers[i])}
		cfg.AdvertisePeerUrls = []url.URL{mustURL(t, c.proxies[i].url())}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = "leader-loss"
		cfg.TickMs = 50
		cfg.ElectionMs = 500
		cfg.UnsafeNoFsync = true
		cfg.LogLevel = "error"
		cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
		wg.Go(func() {
			e, err := embed.StartEtcd(cfg)
			if err != nil {
				errs[i] = err
				return
			}
			c.members[i] = e
			select {
			case <-e.Server.ReadyNotify():
			case <-ctx.Done():
				errs[i] = ctx.Err()
			}
		})
	}
	wg.Wait()
	for i, e := range c.members {
		if e != nil {
			t.Cleanup(e.Close)
		}
		if errs[i] != nil {
			t.Fatalf("start m%d: %v", i+1, errs[i])
		}
	}
	return c
}

func mustURL(t *testing.T, s string) url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return *u
}

// leader returns the index of the member that leads.
func (c *leaderLossCluster) leader(t *testing.T, ctx context.Context) int {
	t.Helper()
	for {
		for i, e := range c.members {
			if e.Server.Leader() != 0 && e.Server.Leader() == e.Server.MemberID() {
				return i
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("no etcd leader")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill makes member i vanish like a host killed with -9: no leadership
// hand-over, and its peer address goes silent instead of refusing.
func (c *leaderLossCluster) kill(i int) {
	c.proxies[i].vanish()
	c.members[i].Server.HardStop()
}

// renewalGaps samples a renewal time until ctx ends and returns the longest
// gap between renewals before and after the moment at (a gap still open at
// the end counts too).
func renewalGaps(ctx context.Context, renewed func() time.Time, at <-chan time.Time) (before, after chan time.Duration) {
	before, after = make(chan time.Duration, 1), make(chan time.Duration, 1)
	go func() {
		var kill time.Time
		var maxBefore, maxAfter time.Duration
		last := renewed()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case kill = <-at:
				continue
			case <-ctx.Done():
				maxAfter = max(maxAfter, time.Since(last))
				before <- maxBefore
				after <- maxAfter
				return
			case <-tick.C:
			}
			r := renewed()
			if !r.After(last) {
				continue
			}
			if kill.IsZero() || r.Before(kill) {
				maxBefore = max(maxBefore, r.Sub(last))
			} else {
				maxAfter = max(maxAfter, r.Sub(last))
			}
			last = r
		}
	}()
	return before, after
}

// A machine whose client talks to an etcd follower keeps its lease, and
// keeps renewing it well within agent_ttl, when the etcd leader vanishes:
// the member forwards renewals to the leader, and one sent to the vanished
// leader waits for the member's request timeout (here 6 s, twice the TTL).
// The engine leadership, on a lease of the same client, survives too.
// clientv3's KeepAlive stream, shown for comparison, queues every renewal
// behind that one.
func TestPresenceSurvivesEtcdLeaderLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("about 15 s: a 3-member etcd loses its leader")
	}
	const ttl = 3 * time.Second
	// The daemon stops a machine's units when its lease has gone
	// unrenewed for agent_ttl minus min(ttl/8, 500ms).
	const heartbeatLimit = ttl - ttl/8
	ctx := testCtx(t)
	c := startLeaderLossCluster(t, ctx)
	lead := c.leader(t, ctx)
	follower, other := (lead+1)%3, (lead+2)%3
	t.Logf("etcd leader m%d; the machine's client talks to m%d only", lead+1, follower+1)

	cli := etcdtest.NewClient(t, []string{c.clients[follower]})
	s := store.New(etcdkv.New(cli), prefix)
	p, err := s.Register(ctx, fleet.Machine{ID: "m1"}, ttl)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.WithoutCancel(ctx))
	l, err := s.Campaign(ctx, "m1", ttl)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Resign(context.WithoutCancel(ctx))

	// Any deletion of the machine key (its lease expired) is a failure.
	watchCli := etcdtest.NewClient(t, []string{c.clients[follower], c.clients[other]})
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	deleted := make(chan time.Time, 1)
	wch := watchCli.Watch(clientv3.WithRequireLeader(wctx), prefix+"machines/m1")
	go func() {
		for resp := range wch {
			for _, ev := range resp.Events {
				if ev.Type == mvccpb.DELETE {
					select {
					case deleted <- time.Now():
					default:
					}
				}
			}
		}
	}()

	// For comparison: clientv3's own KeepAlive stream through the same
	// follower, on a lease of the same TTL.
	rawCli := etcdtest.NewClient(t, []string{c.clients[follower]})
	rawLease, err := rawCli.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		t.Fatal(err)
	}
	var rawMu sync.Mutex
	rawRenewed := time.Now()
	rawLost := make(chan time.Time, 1)
	kctx, kcancel := context.WithCancel(ctx)
	defer kcancel()
	ka, err := rawCli.KeepAlive(kctx, rawLease.ID)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range ka {
			rawMu.Lock()
			rawRenewed = time.Now()
			rawMu.Unlock()
		}
		rawLost <- time.Now()
	}()

	sctx, scancel := context.WithCancel(ctx)
	killedAt := make(chan time.Time, 1)
	rawKilledAt := make(chan time.Time, 1)
	gapBefore, gapAfter := renewalGaps(sctx, p.Renewed, killedAt)
	rawBefore, rawAfter := renewalGaps(sctx, func() time.Time {
		rawMu.Lock()
		defer rawMu.Unlock()
		return rawRenewed
	}, rawKilledAt)

	time.Sleep(ttl) // steady state

	// Kill the leader just before the machine's next renewal, so that
	// the member forwards it to the vanished leader, and make the
	// stream send one at once (a new lease on the client) too.
	nextRenewal := func(after time.Time) time.Time {
		for !p.Renewed().After(after) {
			time.Sleep(5 * time.Millisecond)
		}
		return p.Renewed()
	}
	r1 := nextRenewal(p.Renewed())
	r2 := nextRenewal(r1)
	time.Sleep(time.Until(r2.Add(r2.Sub(r1) - 50*time.Millisecond)))
	extra, err := rawCli.Grant(ctx, int64(ttl/time.Second))
	if err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	killedAt <- killed
	rawKilledAt <- killed
	c.kill(lead)
	extraKA, err := rawCli.KeepAlive(kctx, extra.ID)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for range extraKA {
		}
	}()
	newLead := c.leaderExcept(t, ctx, lead)
	t.Logf("m%d killed; new etcd leader m%d after %v", lead+1, newLead+1, time.Since(killed).Round(time.Millisecond))

	// Watch past the member's request timeout and one more TTL.
	select {
	case at := <-deleted:
		t.Errorf("the machine key was deleted (lease expired) %v after the leader was killed", at.Sub(killed).Round(time.Millisecond))
	case <-p.Done():
		t.Errorf("the presence ended %v after the leader was killed", time.Since(killed).Round(time.Millisecond))
	case <-l.Done():
		t.Errorf("the engine leadership ended %v after the leader was killed", time.Since(killed).Round(time.Millisecond))
	case <-time.After(6*time.Second + ttl):
	}
	scancel()
	before, after := <-gapBefore, <-gapAfter
	rb, ra := <-rawBefore, <-rawAfter
	t.Logf("Presence: longest gap between renewals %v before the leader was killed, %v after (lease TTL %v; units stop at %v)",
		before.Round(time.Millisecond), after.Round(time.Millisecond), ttl, heartbeatLimit)
	select {
	case at := <-rawLost:
		t.Logf("clientv3 KeepAlive stream (comparison): longest gap %v before, %v after; its channel closed (lease given up) %v after the kill",
			rb.Round(time.Millisecond), ra.Round(time.Millisecond), at.Sub(killed).Round(time.Millisecond))
	default:
		t.Logf("clientv3 KeepAlive stream (comparison): longest gap %v before, %v after", rb.Round(time.Millisecond), ra.Round(time.Millisecond))
	}
	if after >= heartbeatLimit {
		t.Errorf("renewals stopped for %v after the leader was killed; the daemon stops a machine's units after %v", after.Round(time.Millisecond), heartbeatLimit)
	}
	if !p.Renewed().After(killed) {
		t.Error("no renewal since the leader was killed")
	}
	// Still the engine leader: a fenced write goes through.
	if err := s.Apply(ctx, l, store.Changes{PutReasons: []fleet.Reason{{Unit: "a.service", Summary: "x"}}}); err != nil {
		t.Errorf("Apply by the engine leader after the etcd leader change: %v", err)
	}
}

// leaderExcept waits for a leader other than member dead.
func (c *leaderLossCluster) leaderExcept(t *testing.T, ctx context.Context, dead int) int {
	t.Helper()
	for {
		for i, e := range c.members {
			if i != dead && e.Server.Leader() == e.Server.MemberID() {
				return i
			}
		}
		select {
		case <-ctx.Done():
			t.Fatal("no new etcd leader")
		case <-time.After(10 * time.Millisecond):
		}
	}
}
