package etcdserver

// GuardLooks returns how many times the disk guard of s has looked at the
// disk so far.
func GuardLooks(s *Server) int64 { return s.guardLooks.Load() }
