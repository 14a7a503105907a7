// Package doctor runs the host checks of `anklume doctor` (SPEC.md §12.8).
// Every host dependency arrives through Env, so the checks run against the
// in-memory Incus fake and temporary directories in tests.
package doctor

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/emit/nft"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/compiler/tree"
	"github.com/anklume/anklume/internal/aiaccess"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/lock"
	"github.com/anklume/anklume/internal/nftables"
	"github.com/anklume/anklume/internal/plan"
	"github.com/anklume/anklume/internal/reconcile"
)

// Status is the outcome of one check.
type Status string

// The statuses of §12.8.
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// The check ids of §12.8, in their order.
const (
	IncusSocket      = "incus.socket"
	IncusVersion     = "incus.version"
	StoragePool      = "storage.pool"
	NFTBinary        = "nft.binary"
	NFTBrNetfilter   = "nft.br_netfilter"
	NFTPersist       = "nft.persist"
	NFTStatus        = "nft.status"
	AnsiblePlaybook  = "ansible.playbook"
	AnsibleIncusConn = "ansible.incus_connection"
	HostSubnets      = "host.subnets"
	Lock             = "lock"
	TreeUpToDate     = "tree.uptodate"
	IncusOrphans     = "incus.orphans"
)

// IDs lists the check ids in output order.
func IDs() []string {
	return []string{IncusSocket, IncusVersion, StoragePool, NFTBinary, NFTBrNetfilter, NFTPersist,
		NFTStatus, AnsiblePlaybook, AnsibleIncusConn, HostSubnets, Lock, TreeUpToDate, IncusOrphans}
}

// Check is one line of the report.
type Check struct {
	ID     string `json:"id"`
	Status Status `json:"status"`
	Text   string `json:"text"`
}

// Report is the `--json` document of §12.8.
type Report struct {
	FormatVersion int     `json:"format_version"`
	Checks        []Check `json:"checks"`
	Failed        int     `json:"failed"`
}

// Env is the host as doctor sees it. Nil functions count as "not
// available" and the checks that need them say so.
type Env struct {
	// Server is the connected Incus server, nil when ConnErr is set.
	Server  incusx.Server
	ConnErr error
	// Remote is the --remote value ("" for the local daemon).
	Remote string
	// Model is the resolved PSOT, nil when it did not load or validate;
	// ModelErr then says why.
	Model    *model.Infra
	ModelErr string
	// SubnetConflicts are the V31 messages found with the real host
	// interfaces; SubnetSkipped is set by ANKLUME_SKIP_HOST_SUBNET_CHECK=1.
	SubnetConflicts []string
	SubnetSkipped   bool
	// LookPath resolves a binary in PATH (exec.LookPath).
	LookPath func(string) (string, error)
	// BridgeNF returns the content of bridge-nf-call-iptables.
	BridgeNF func() ([]byte, error)
	// Systemd reports whether systemd is PID 1; UnitEnabled whether
	// anklume-nftables.service is enabled.
	Systemd     func() bool
	UnitEnabled func(ctx context.Context) (bool, error)
	// NFT compares the live table with a rendered ruleset (§7.8).
	NFT func(ctx context.Context, ruleset []byte) (nftables.State, []byte, error)
	// ConnectionPlugins lists the Ansible connection plugins
	// (`ansible-doc -t connection -l`).
	ConnectionPlugins func(ctx context.Context) ([]string, error)
	// Tree plans a sync of the model's tree; nil with no enabled domain.
	Tree func(m *model.Infra) (*tree.Plan, error)
	// Now, Host and Alive judge the staleness of a lock (§9.7).
	Now   func() time.Time
	Host  string
	Alive func(pid int) bool
	// ObserveOptions are the reads the model needs (plan.ObserveOptions).
	ObserveOptions func(m *model.Infra) reconcile.ObserveOptions
}

// Run runs every check, in the order of §12.8.
func Run(ctx context.Context, env Env) Report {
	r := Report{FormatVersion: 1, Checks: []Check{}}
	add := func(id string, st Status, format string, args ...any) {
		r.Checks = append(r.Checks, Check{ID: id, Status: st, Text: fmt.Sprintf(format, args...)})
		if st == Fail {
			r.Failed++
		}
	}
	noIncus := "not checked: Incus is not reachable"
	noModel := "not checked: " + env.ModelErr

	// incus.socket, incus.version
	// The connection only counts as made once the server answered: a
	// client is created without contacting it, so the first request is
	// the check. A server that does not answer leaves every check that
	// needs it "not checked", never ok.
	var srvInfo string
	var info *api.Server
	if env.Server != nil {
		var err error
		if info, err = env.Server.ServerInfo(ctx); err != nil {
			env.Server, env.ConnErr = nil, err
		}
	}
	if env.Server == nil {
		add(IncusSocket, Fail, "cannot connect to Incus: %v", env.ConnErr)
		add(IncusVersion, Warn, "%s", noIncus)
	} else {
		where := "the local Incus daemon"
		if env.Remote != "" {
			where = "remote " + env.Remote
		}
		add(IncusSocket, OK, "connected to %s", where)
		srvInfo = info.Environment.ServerVersion
		var missing []string
		for _, e := range incusx.RequiredExtensions() {
			if !slices.Contains(info.APIExtensions, e) {
				missing = append(missing, e)
			}
		}
		if len(missing) > 0 {
			add(IncusVersion, Fail, "Incus %s lacks the API extensions %s", srvInfo, strings.Join(missing, ", "))
		} else {
			add(IncusVersion, OK, "Incus %s", srvInfo)
		}
	}

	// storage.pool
	pool := "default"
	if env.Model != nil && env.Model.StoragePool != "" {
		pool = env.Model.StoragePool
	}
	if env.Server == nil {
		add(StoragePool, Warn, "%s", noIncus)
	} else if pools, err := env.Server.StoragePools(ctx); err != nil {
		add(StoragePool, Fail, "listing the storage pools: %v", err)
	} else {
		i := slices.IndexFunc(pools, func(p api.StoragePool) bool { return p.Name == pool })
		switch {
		case i < 0:
			add(StoragePool, Fail, "storage pool %q does not exist", pool)
		case pools[i].Driver == "dir":
			add(StoragePool, Warn, "storage pool %q uses the dir driver: snapshots and copies are full copies and quotas are not enforced; prefer zfs or btrfs", pool)
		default:
			add(StoragePool, OK, "storage pool %q (%s)", pool, pools[i].Driver)
		}
	}

	// nft.binary
	if p, err := lookPath(env, "nft"); err != nil {
		add(NFTBinary, Fail, "%s (%s)", nftables.MsgNoNFT, nftables.HintNoNFT)
	} else {
		add(NFTBinary, OK, "%s", p)
	}

	// nft.br_netfilter
	if b, err := call(env.BridgeNF); err == nil && strings.TrimSpace(string(b)) == "1" {
		add(NFTBrNetfilter, OK, "bridge netfilter is on")
	} else {
		add(NFTBrNetfilter, Warn, "bridge netfilter is off; rules inside one domain bridge are not enforced (modprobe br_netfilter && sysctl -w net.bridge.bridge-nf-call-iptables=1)")
	}

	// nft.persist
	switch {
	case env.Systemd == nil || !env.Systemd():
		add(NFTPersist, Warn, "systemd is not running; nothing loads the isolation rules at boot, so they will not survive a reboot")
	case env.UnitEnabled == nil:
		add(NFTPersist, Warn, "not checked: systemctl is not available")
	default:
		on, err := env.UnitEnabled(ctx)
		switch {
		case err != nil:
			add(NFTPersist, Warn, "not checked: %v", err)
		case on:
			add(NFTPersist, OK, "%s is enabled", nftables.UnitName)
		default:
			add(NFTPersist, Warn, "%s is not enabled; the isolation rules will not survive a reboot (run anklume nftables deploy)", nftables.UnitName)
		}
	}

	// nft.status
	switch {
	case env.Remote != "":
		add(NFTStatus, Warn, "not checked (remote): the rules live on the Incus host")
	case env.Model == nil:
		add(NFTStatus, Warn, "%s", noModel)
	case env.NFT == nil:
		add(NFTStatus, Warn, "not checked: nft is not available")
	default:
		rm := env.Model
		if env.Server != nil { // the AI access holder of `anklume ai switch`
			if o, _, err := aiaccess.FromServer(ctx, env.Server, rm); err == nil {
				rm = o
			}
		}
		st, _, err := env.NFT(ctx, nft.Render(rm))
		switch {
		case err != nil:
			add(NFTStatus, Warn, "not checked: %s", strings.SplitN(err.Error(), "\n", 2)[0])
		case st == nftables.InSync:
			add(NFTStatus, OK, "table inet anklume is in sync")
		case st == nftables.Drift:
			add(NFTStatus, Fail, "table inet anklume drifted from the PSOT (anklume nftables status shows the diff; anklume nftables deploy fixes it)")
		default:
			add(NFTStatus, Fail, "table inet anklume is not loaded: the domains are not isolated (run anklume nftables deploy)")
		}
	}

	// ansible.playbook
	if p, err := lookPath(env, "ansible-playbook"); err != nil {
		add(AnsiblePlaybook, Warn, "ansible-playbook not found in PATH; it is needed only for provisioning and the plain Ansible path")
	} else {
		add(AnsiblePlaybook, OK, "%s", p)
	}

	// ansible.incus_connection (info only: never warns or fails)
	if env.ConnectionPlugins == nil {
		add(AnsibleIncusConn, OK, "ansible-doc is not available; the tree uses the bundled anklume_incus plugin")
	} else if plugins, err := env.ConnectionPlugins(ctx); err != nil {
		add(AnsibleIncusConn, OK, "connection plugins not listed (%s); the tree falls back to the bundled anklume_incus plugin", strings.SplitN(err.Error(), "\n", 2)[0])
	} else if slices.Contains(plugins, "community.general.incus") {
		add(AnsibleIncusConn, OK, "community.general.incus is available")
	} else {
		add(AnsibleIncusConn, OK, "community.general.incus is not installed; the tree uses the bundled anklume_incus plugin")
	}

	// host.subnets
	switch {
	case env.Remote != "":
		add(HostSubnets, Warn, "not checked (remote): only this machine's interfaces are visible")
	case env.SubnetSkipped:
		add(HostSubnets, Warn, "not checked: ANKLUME_SKIP_HOST_SUBNET_CHECK=1")
	case len(env.SubnetConflicts) > 0:
		add(HostSubnets, Fail, "%s", strings.Join(env.SubnetConflicts, "; "))
	case env.Model == nil:
		add(HostSubnets, Warn, "%s", noModel)
	default:
		add(HostSubnets, OK, "no domain subnet overlaps a host interface")
	}

	// lock
	if env.Server == nil {
		add(Lock, Warn, "%s", noIncus)
	} else {
		st, text := lockState(ctx, env)
		add(Lock, st, "%s", text)
	}

	// tree.uptodate
	switch {
	case env.Model == nil:
		add(TreeUpToDate, Warn, "%s", noModel)
	case len(env.Model.EnabledDomains()) == 0 || env.Tree == nil:
		add(TreeUpToDate, OK, "nothing to generate: no enabled domains")
	default:
		p, err := env.Tree(env.Model)
		if err != nil {
			add(TreeUpToDate, Fail, "%s", strings.ReplaceAll(err.Error(), "\n", "; "))
			break
		}
		created, updated, _ := p.Counts()
		if n := created + updated; n > 0 {
			add(TreeUpToDate, Warn, "%d generated files are out of date (%d to create, %d to update); run anklume sync", n, created, updated)
		} else {
			add(TreeUpToDate, OK, "the generated tree matches the PSOT")
		}
	}

	// incus.orphans
	switch {
	case env.Server == nil:
		add(IncusOrphans, Warn, "%s", noIncus)
	case env.Model == nil:
		add(IncusOrphans, Warn, "%s", noModel)
	default:
		st, text := orphans(ctx, env)
		add(IncusOrphans, st, "%s", text)
	}
	return r
}

func lookPath(env Env, name string) (string, error) {
	if env.LookPath == nil {
		return "", fmt.Errorf("%s: no PATH lookup", name)
	}
	return env.LookPath(name)
}

func call(f func() ([]byte, error)) ([]byte, error) {
	if f == nil {
		return nil, fmt.Errorf("not available")
	}
	return f()
}

// lockState reads the lock project (§9.7) without changing it.
func lockState(ctx context.Context, env Env) (Status, string) {
	p, _, err := env.Server.Project(ctx, lock.Project)
	if incusx.IsNotFound(err) {
		return OK, "no lock is held"
	}
	if err != nil {
		return Fail, fmt.Sprintf("reading the lock: %v", err)
	}
	i := lock.Info{ID: p.Config[lock.KeyID], Owner: p.Config[lock.KeyOwner], Command: p.Config[lock.KeyCommand],
		Acquired: p.Config[lock.KeyAcquired], Heartbeat: p.Config[lock.KeyHeartbeat]}
	if i.ID == "" {
		return OK, "no lock is held"
	}
	now, alive := time.Now, env.Alive
	if env.Now != nil {
		now = env.Now
	}
	if alive == nil {
		alive = func(int) bool { return true }
	}
	if lock.Stale(i, now(), env.Host, alive) {
		return Warn, fmt.Sprintf("stale lock held by %s (%s) since %s; run anklume unlock", i.Owner, i.Command, i.Acquired)
	}
	return Warn, fmt.Sprintf("held by %s (%s) since %s", i.Owner, i.Command, i.Acquired)
}

// orphans computes the plan (§9.2) and lists the owned objects that are
// not desired.
func orphans(ctx context.Context, env Env) (Status, string) {
	oo := reconcile.ObserveOptions{Pools: []string{env.Model.StoragePool}}
	if env.ObserveOptions != nil {
		oo = env.ObserveOptions(env.Model)
	}
	obs, err := reconcile.Observe(ctx, env.Server, oo)
	if err != nil {
		return Fail, fmt.Sprintf("reading Incus: %v", err)
	}
	p, err := reconcile.Diff(incus.Desired(env.Model), obs, reconcile.Options{
		AllowEmpty: true, Remote: env.Remote != "", ResolveImage: env.Server.ResolveImage, Model: env.Model,
	})
	if err != nil {
		errs := reconcile.Errors(err)
		texts := make([]string, len(errs))
		for i, e := range errs {
			texts[i] = e.Error()
		}
		return Fail, "planning: " + strings.Join(texts, "; ")
	}
	var names []string
	for _, c := range p.Changes {
		if c.Orphan && c.Action == plan.Delete {
			names = append(names, string(c.Kind)+" "+c.Name)
		}
	}
	var kept []string
	for _, n := range p.Notes {
		if n.Orphan {
			kept = append(kept, string(n.Kind)+" "+n.Name)
		}
	}
	switch {
	case len(names) > 0:
		text := fmt.Sprintf("%d orphan objects that anklume apply deletes: %s", len(names), strings.Join(names, ", "))
		if len(kept) > 0 {
			text += fmt.Sprintf("; %d kept: %s", len(kept), strings.Join(kept, ", "))
		}
		return Warn, text
	case len(kept) > 0:
		return OK, fmt.Sprintf("no orphan to delete; %d kept: %s", len(kept), strings.Join(kept, ", "))
	}
	return OK, "no orphan objects"
}
