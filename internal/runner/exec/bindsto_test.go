package exec

import "testing"

// TestBindsToStopsTheSidekick is seed 002's sidekick pattern: the
// dependency names the instance with %i, and stopping (or a crash of) the
// main unit stops the sidekick; PartOf= follows stops too; Requires= follows
// a stop but not a crash.
func TestBindsToStopsTheSidekick(t *testing.T) {
	h := newHarness(t, true)
	const loop = "ExecStart=/bin/sh -c \"while true; do sleep 0.2; done\"\n"
	h.load("web@1.service", "[Service]\n"+loop)
	h.load("web-discovery@1.service", "[Unit]\nBindsTo=web@%i.service\nAfter=web@%i.service\n[Service]\n"+loop)
	h.load("web-part@1.service", "[Unit]\nPartOf=web@%i.service\n[Service]\n"+loop)
	h.load("web-req@1.service", "[Unit]\nRequires=web@%i.service\n[Service]\n"+loop)

	// Starting the sidekick pulls in its BindsTo= unit (expanded %i).
	h.start("web-discovery@1.service")
	h.waitState("web@1.service", "active", "running")
	h.waitState("web-discovery@1.service", "active", "running")
	h.start("web-part@1.service")
	h.start("web-req@1.service")
	h.waitState("web-part@1.service", "active", "running")
	h.waitState("web-req@1.service", "active", "running")

	h.stop("web@1.service")
	h.waitState("web@1.service", "inactive", "dead")
	for _, n := range []string{"web-discovery@1.service", "web-part@1.service", "web-req@1.service"} {
		h.waitState(n, "inactive", "dead")
	}
	h.waitLog("web-discovery@1.service", "bound to web@1.service, which stopped")

	// A crash: BindsTo= and PartOf= follow, Requires= does not.
	h.load("app.service", "[Service]\nExecStart=/bin/sh -c \"sleep 0.5; exit 3\"\n")
	h.load("app-side.service", "[Unit]\nBindsTo=app.service\n[Service]\n"+loop)
	h.load("app-req.service", "[Unit]\nRequires=app.service\n[Service]\n"+loop)
	h.start("app-side.service")
	h.start("app-req.service")
	h.waitState("app-side.service", "active", "running")
	h.waitState("app-req.service", "active", "running")
	h.waitState("app.service", "failed", "failed")
	h.waitState("app-side.service", "inactive", "dead")
	if st := h.waitState("app-req.service", "active", "running"); st.MainPID <= 0 {
		t.Fatalf("app-req.service: %+v", st)
	}
}
