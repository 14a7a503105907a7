// Package lifecycle holds the logic of the lifecycle commands that read or
// remove a whole infrastructure on an Incus server (SPEC.md §12.1–§12.3):
// Status compares the PSOT with the live state, and Flush runs the removal
// steps of `flush` and `destroy`. Both work on an incusx.Server and never
// print anything but the progress lines they are given a writer for.
package lifecycle

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/aiaccess"
	"github.com/anklume/anklume/internal/incusx"
	"github.com/anklume/anklume/internal/plan"
	"github.com/anklume/anklume/internal/reconcile"
)

// Instance states of §12.1.
const (
	StateRunning = "Running"
	StateStopped = "Stopped"
	StateAbsent  = "Absent"
)

// Report is the document of `status --json` (SPEC.md §12.1). The field
// order is the order of the keys in the JSON output.
type Report struct {
	FormatVersion int    `json:"format_version"`
	Infra         string `json:"infra"`
	// NFTables is "in sync", "drift" or "not loaded", and nil when not
	// checked (--remote, or the check failed).
	NFTables *string        `json:"nftables"`
	Domains  []DomainStatus `json:"domains"`
	// AIAccessHolder is the domain `anklume ai switch` gave the exclusive
	// AI access to, "" when ai_access_default holds it (not in the JSON
	// document).
	AIAccessHolder string `json:"-"`
}

// DomainStatus is one domain of a Report.
type DomainStatus struct {
	Name    string `json:"name"`
	Enabled bool   `json:"enabled"`
	// TrustLevel is nil when the domain has none (legacy mode).
	TrustLevel    *string `json:"trust_level"`
	Project       string  `json:"project"`
	ProjectExists bool    `json:"project_exists"`
	Network       string  `json:"network"`
	NetworkExists bool    `json:"network_exists"`
	// Member is the Incus cluster member the domain is placed on (the
	// one its project records, or the one the next apply would pick), ""
	// on a single server; MemberOffline is true when that member is
	// offline (the domain's state is then unknown).
	Member        string          `json:"member,omitempty"`
	MemberOffline bool            `json:"member_offline,omitempty"`
	Machines      []MachineStatus `json:"machines"`
}

// MachineStatus is one machine of a DomainStatus.
type MachineStatus struct {
	Name     string `json:"name"`
	Instance string `json:"instance"`
	// Type is "lxc" or "vm".
	Type string `json:"type"`
	// DesiredState is the machine's state: "running" or "stopped".
	DesiredState string `json:"desired_state"`
	// State is StateRunning, StateStopped or StateAbsent.
	State string `json:"state"`
	// IP is the live IPv4 address of eth0, nil when there is none.
	IP *string `json:"ip"`
	// Drift is true when the plan has a change for this instance.
	Drift bool `json:"drift"`
	// Usage is the live resource use of a running instance; only with
	// StatusOptions.Usage (the dashboard), absent from `status --json`.
	Usage *Usage `json:"usage,omitempty"`
}

// Usage is what a running instance uses, from its live state.
type Usage struct {
	// CPUSeconds is the CPU time used since the instance started.
	CPUSeconds float64 `json:"cpu_seconds"`
	// MemoryBytes is the memory in use now.
	MemoryBytes int64 `json:"memory_bytes"`
	// Processes is the number of processes (-1 when Incus does not know).
	Processes int64 `json:"processes"`
}

// StatusOptions are the inputs of Status.
type StatusOptions struct {
	// Observe is the conditional reads of §9.1 the model needs (pools,
	// cluster members).
	Observe reconcile.ObserveOptions
	// Remote is true with --remote (no host directory checks).
	Remote bool
	// Usage fills MachineStatus.Usage for running instances.
	Usage bool
}

// Status reads the live state and compares it with the model m.
//
// Requests: the reads of SPEC.md §9.1 (reconcile.Observe, the same number
// whatever the number of domains and instances), except that when srv is
// an incusx.StateLister the instances are listed once, with their live
// state and addresses, by GET /1.0/instances?all-projects=true&recursion=2
// in place of recursion=1 (§12.1: one state read per command, never one
// per instance; the recursion=2 list carries everything recursion=1 does,
// so reading both cost a second full instance list). Without a
// StateLister the states come from the recursion=1 listing and every IP
// is nil. The state read is sent at the same time as the others.
//
// The drift markers come from reconcile.Diff over every enabled domain.
// Plan errors (§9.2) do not stop status: they are returned as warnings,
// with the plan-time warnings, for the caller to print.
func Status(ctx context.Context, srv incusx.Server, m *model.Infra, opts StatusOptions) (*Report, []plan.Warning, error) {
	// The state read is the slowest (the daemon gathers each instance's
	// state): it is sent at the same time as the reads of the plan.
	sl, withState := srv.(incusx.StateLister)
	var full []api.InstanceFull
	var fullErr error
	done := make(chan struct{})
	if withState {
		go func() {
			defer close(done)
			full, fullErr = sl.InstancesWithState(ctx)
		}()
	} else {
		close(done)
	}
	oo := opts.Observe
	oo.SkipInstances = withState
	obs, err := reconcile.Observe(ctx, srv, oo)
	<-done
	if err != nil {
		return nil, nil, err
	}
	if withState {
		if fullErr != nil {
			return nil, nil, fullErr
		}
		obs.Instances = make([]api.Instance, len(full))
		for i := range full {
			obs.Instances[i] = full[i].Instance
		}
	}
	var warnings []plan.Warning
	m, aiWarn := aiaccess.Live(m, obs.Projects)
	if aiWarn != "" {
		warnings = append(warnings, plan.Warning{Msg: aiWarn})
	}
	drift := map[string]bool{}
	member := map[string]string{}
	offline := map[string]bool{}
	p, derr := reconcile.Diff(incus.Desired(m), obs, reconcile.Options{
		Model: m, ResolveImage: srv.ResolveImage, Remote: opts.Remote,
	})
	if p != nil {
		warnings = append(warnings, p.Warnings...)
		for _, c := range p.Changes {
			if c.Kind == plan.KindInstance {
				drift[c.Name] = true
			}
		}
		for _, fd := range p.Failed {
			warnings = append(warnings, plan.Warning{Msg: fmt.Sprintf("domain %s: %s", fd.Domain, fd.Message)})
		}
		for _, di := range p.Domains {
			member[di.Name] = di.Member
		}
		for _, u := range p.Unknown {
			member[u.Domain], offline[u.Domain] = u.Member, true
			warnings = append(warnings, plan.Warning{Msg: fmt.Sprintf("domain %s: unknown: %s", u.Domain, u.Message)})
		}
	}
	for _, e := range reconcile.Errors(derr) {
		warnings = append(warnings, plan.Warning{Msg: e.Msg, Hint: e.Hint})
	}

	live := map[string]liveInstance{}
	if withState {
		for _, i := range full {
			li := liveInstance{status: i.Status, ip: eth0IPv4(i.State)}
			if i.State != nil {
				li.usage = &Usage{CPUSeconds: float64(i.State.CPU.Usage) / 1e9, MemoryBytes: i.State.Memory.Usage,
					Processes: i.State.Processes}
			}
			live[i.Project+"/"+i.Name] = li
		}
	} else {
		for _, i := range obs.Instances {
			live[i.Project+"/"+i.Name] = liveInstance{status: i.Status}
		}
	}
	projects := map[string]bool{}
	for _, p := range obs.Projects {
		projects[p.Name] = true
	}
	networks := map[string]bool{}
	for _, n := range obs.Networks {
		networks[n.Name] = true
	}

	r := &Report{FormatVersion: 1, Infra: m.ProjectName, Domains: []DomainStatus{}, AIAccessHolder: m.Global.AIAccessHolder}
	for _, d := range m.Domains {
		ds := DomainStatus{
			Name: d.Name, Enabled: d.Enabled, Project: d.Project, ProjectExists: projects[d.Project],
			Network: d.Bridge, NetworkExists: networks[d.Bridge], Machines: []MachineStatus{},
			Member: member[d.Name], MemberOffline: offline[d.Name],
		}
		if d.TrustLevel != "" {
			ds.TrustLevel = &d.TrustLevel
		}
		for _, x := range d.Machines {
			key := d.Project + "/" + x.Instance
			ms := MachineStatus{Name: x.Name, Instance: x.Instance, Type: x.Type, DesiredState: x.State,
				State: StateAbsent, Drift: drift[key]}
			if ms.DesiredState == "" {
				ms.DesiredState = "running"
			}
			if li, ok := live[key]; ok {
				ms.State = StateStopped
				if li.status == "Running" {
					ms.State = StateRunning
					if opts.Usage && li.usage != nil {
						ms.Usage = li.usage
					}
				}
				if li.ip != "" {
					ip := li.ip
					ms.IP = &ip
				}
			}
			ds.Machines = append(ds.Machines, ms)
		}
		r.Domains = append(r.Domains, ds)
	}
	return r, warnings, nil
}

// liveInstance is what status needs of a live instance.
type liveInstance struct {
	status string
	ip     string
	usage  *Usage
}

// eth0IPv4 returns the first global IPv4 address of eth0, or "".
func eth0IPv4(st *api.InstanceState) string {
	if st == nil {
		return ""
	}
	first := ""
	for _, a := range st.Network["eth0"].Addresses {
		if a.Family != "inet" {
			continue
		}
		if a.Scope == "global" {
			return a.Address
		}
		if first == "" {
			first = a.Address
		}
	}
	return first
}

// RenderStatus prints r as text: one block per domain with its trust
// level, project and network, a table of its machines (TYPE, STATE, IP
// and a `*` under DRIFT when the plan has changes for the instance), and
// the nftables line last.
//
//	Domain work (trusted)
//	  project work: present
//	  network net-work: present
//	  MACHINE  TYPE  STATE    IP            DRIFT
//	  web      lxc   Running  10.110.0.1
//	  db       lxc   Absent   -             *
//	nftables: in sync
//
// nftLine is the last line (such as "nftables: in sync").
func RenderStatus(w io.Writer, r *Report, nftLine string) error {
	var b strings.Builder
	for _, d := range r.Domains {
		var tags []string
		if d.TrustLevel != nil {
			tags = append(tags, *d.TrustLevel)
		}
		if !d.Enabled {
			tags = append(tags, "disabled")
		}
		fmt.Fprintf(&b, "Domain %s", d.Name)
		if len(tags) > 0 {
			fmt.Fprintf(&b, " (%s)", strings.Join(tags, ", "))
		}
		fmt.Fprintf(&b, "\n  project %s: %s\n  network %s: %s\n", d.Project, presence(d.ProjectExists), d.Network, presence(d.NetworkExists))
		if d.Member != "" {
			state := "online"
			if d.MemberOffline {
				state = "offline, state unknown"
			}
			fmt.Fprintf(&b, "  member %s: %s\n", d.Member, state)
		}
		if len(d.Machines) == 0 {
			b.WriteString("  (no machines)\n")
			continue
		}
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  MACHINE\tTYPE\tSTATE\tIP\tDRIFT")
		for _, x := range d.Machines {
			ip, mark := "-", ""
			if x.IP != nil {
				ip = *x.IP
			}
			if x.Drift {
				mark = "*"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", x.Name, x.Type, x.State, ip, mark)
		}
		if err := tw.Flush(); err != nil {
			return fmt.Errorf("formatting the status: %w", err)
		}
	}
	// tabwriter pads the last column too: drop trailing blanks.
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	var out strings.Builder
	for _, l := range lines {
		if l == "" && len(lines) == 1 {
			continue
		}
		out.WriteString(strings.TrimRight(l, " "))
		out.WriteByte('\n')
	}
	out.WriteString(nftLine)
	out.WriteByte('\n')
	if _, err := io.WriteString(w, out.String()); err != nil {
		return fmt.Errorf("printing the status: %w", err)
	}
	return nil
}

func presence(ok bool) string {
	if ok {
		return "present"
	}
	return "absent"
}
