package importer

import (
	"encoding/json"
	"sort"
	"strconv"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/compiler/emit/yamlw"
	"github.com/anklume/anklume/compiler/model"
	"github.com/anklume/anklume/internal/plural"
)

// document writes the PSOT (§11 rule 7 for the header, which YAML adds).
func (im *importer) document() *Result {
	res := &Result{ProjectName: im.infra}
	imported := map[string]bool{}
	for _, d := range im.domains {
		imported[d.name] = true
		for _, x := range d.machines {
			imported[x.name] = true
		}
	}
	consumers := map[*machine]bool{}
	for _, sv := range im.svs {
		for _, c := range sv.consumers {
			consumers[c.x] = true
		}
	}

	domains := yamlw.Map{}
	for _, d := range im.domains {
		var dm yamlw.Map
		add := func(k string, v yamlw.Value) { dm = append(dm, yamlw.KV{Key: k, Value: v}) }
		if d.desc != "" {
			add("description", yamlw.Str(d.desc))
		}
		if d.trust != "" {
			add("trust_level", yamlw.Str(d.trust))
		}
		if d.seqExplicit {
			add("subnet_id", yamlw.Int(d.seq))
		}
		if d.ephemeral {
			add("ephemeral", yamlw.Bool(true))
		}
		if !d.egress {
			add("egress", yamlw.Bool(false))
		}
		if t := d.target(); t != "" {
			add("target", yamlw.Str(t))
		}
		if len(d.profiles) > 0 {
			add("profiles", d.profiles)
		}
		machines := yamlw.Map{}
		for _, x := range d.machines {
			if d.owned && !consumers[x] && im.isAutoFirewall(d, x) {
				continue
			}
			machines = append(machines, yamlw.KV{Key: x.name, Value: im.machineDoc(d, x)})
			res.Machines++
		}
		if len(machines) > 0 {
			add("machines", machines)
		}
		if dm == nil {
			dm = yamlw.Map{}
		}
		domains = append(domains, yamlw.KV{Key: d.name, Value: dm})
		res.Domains++
	}

	doc := yamlw.Map{
		{Key: "format_version", Value: yamlw.Int(1)},
		{Key: "project_name", Value: yamlw.Str(im.infra)},
		{Key: "global", Value: im.globalDoc(imported)},
		{Key: "domains", Value: domains},
	}
	if pol := im.policies(imported); len(pol) > 0 {
		doc = append(doc, yamlw.KV{Key: "network_policies", Value: pol})
		res.Policies = len(pol)
	}
	if sv := im.sharedVolumesDoc(); len(sv) > 0 {
		doc = append(doc, yamlw.KV{Key: "shared_volumes", Value: sv})
	}
	res.Doc = doc
	res.Warnings = im.warnings
	return res
}

// globalDoc writes global (§11 rule 4).
func (im *importer) globalDoc(imported map[string]bool) yamlw.Map {
	g := yamlw.Map{}
	add := func(k string, v yamlw.Value) { g = append(g, yamlw.KV{Key: k, Value: v}) }
	if im.legacy {
		if b := im.global["base_subnet"]; b != "" && b != defaultBaseSubnet {
			add("base_subnet", yamlw.Str(b))
		}
	} else {
		add("addressing", yamlw.Map{
			{Key: "base_octet", Value: yamlw.Int(10)},
			{Key: "zone_base", Value: yamlw.Int(im.zoneBase())},
		})
	}
	if im.image != "" && im.image != defaultImage {
		add("default_os_image", yamlw.Str(im.image))
	}
	if im.pool != defaultPool {
		add("storage_pool", yamlw.Str(im.pool))
	}
	if im.pdBase != defaultPersistentDataBase {
		add("persistent_data_base", yamlw.Str(im.pdBase))
	}
	if im.opts.Prefix != "" && im.prefix == "" && im.hasOwned() {
		add("nesting_prefix", yamlw.Bool(false))
	}
	if im.fwVM {
		add("firewall_mode", yamlw.Str("vm"))
	}
	if v := im.global[incus.KeyGPUPolicy]; v != "" {
		add("gpu_policy", yamlw.Str(v))
	}
	ap, ad := im.global[incus.KeyAIAccessPolicy], im.global[incus.KeyAIAccessDefault]
	if ad != "" && !imported[ad] {
		im.warnf("dropping ai_access_default %q (and ai_access_policy %q): the domain is not imported", ad, ap)
		ap, ad = "", ""
	}
	if ap != "" {
		add("ai_access_policy", yamlw.Str(ap))
	}
	if ad != "" {
		add("ai_access_default", yamlw.Str(ad))
	}
	if im.global[incus.KeyHostIsolation] == "false" {
		add("host_isolation", yamlw.Bool(false))
	}
	return g
}

// hasOwned reports whether some owned domain was imported.
func (im *importer) hasOwned() bool {
	for _, d := range im.domains {
		if d.owned {
			return true
		}
	}
	return false
}

// policies reads user.anklume.policies back from the imported owned
// projects, sorted by index, without the auto policy (§11 rule 6).
func (im *importer) policies(imported map[string]bool) yamlw.List {
	byIndex := map[int]incus.PolicyRecord{}
	for _, d := range im.domains {
		if !d.owned {
			continue
		}
		raw := im.projectConfig(d.project)[incus.KeyPolicies]
		if raw == "" {
			continue
		}
		var recs []incus.PolicyRecord
		if err := json.Unmarshal([]byte(raw), &recs); err != nil {
			im.warnf("skipping the network policies of project %q: %s: %v", d.project, incus.KeyPolicies, err)
			continue
		}
		for _, r := range recs {
			byIndex[r.Index] = r
		}
	}
	idx := make([]int, 0, len(byIndex))
	for i := range byIndex {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	var out yamlw.List
	for _, i := range idx {
		r := byIndex[i]
		if r.Auto {
			continue
		}
		if missing := firstMissing(imported, r.From, r.To); missing != "" {
			im.warnf("dropping network policy %d (%s -> %s): %q is not imported", r.Index, r.From, r.To, missing)
			continue
		}
		out = append(out, policyDoc(r))
	}
	return out
}

// firstMissing returns the first endpoint that is neither host nor an
// imported name.
func firstMissing(imported map[string]bool, ends ...string) string {
	for _, e := range ends {
		if e != model.HostEndpoint && !imported[e] {
			return e
		}
	}
	return ""
}

// policyDoc writes one policy entry.
func policyDoc(r incus.PolicyRecord) yamlw.Map {
	m := yamlw.Map{}
	if r.Description != "" {
		m = append(m, yamlw.KV{Key: "description", Value: yamlw.Str(r.Description)})
	}
	m = append(m, yamlw.KV{Key: "from", Value: yamlw.Str(r.From)}, yamlw.KV{Key: "to", Value: yamlw.Str(r.To)})
	switch p := r.Ports.(type) {
	case []any:
		l := yamlw.List{}
		for _, x := range p {
			if f, ok := x.(float64); ok {
				l = append(l, yamlw.Int(int64(f)))
			}
		}
		m = append(m, yamlw.KV{Key: "ports", Value: l})
	default:
		m = append(m, yamlw.KV{Key: "ports", Value: yamlw.Str("all")})
	}
	if r.Protocol != "" && r.Protocol != "tcp" {
		m = append(m, yamlw.KV{Key: "protocol", Value: yamlw.Str(r.Protocol)})
	}
	if r.Bidirectional {
		m = append(m, yamlw.KV{Key: "bidirectional", Value: yamlw.Bool(true)})
	}
	return m
}

// projectConfig returns the config of the project named name.
func (im *importer) projectConfig(name string) map[string]string {
	for _, p := range im.st.Projects {
		if p.Name == name {
			return p.Config
		}
	}
	return nil
}

// sharedVolumesDoc writes the shared volumes rebuilt from sv- devices,
// sorted by name, with per-machine consumers in machine order.
func (im *importer) sharedVolumesDoc() yamlw.Map {
	names := make([]string, 0, len(im.svs))
	for n := range im.svs {
		names = append(names, n)
	}
	sort.Strings(names)
	order := map[*machine]int{}
	for _, d := range im.domains {
		for _, x := range d.machines {
			order[x] = len(order)
		}
	}
	out := yamlw.Map{}
	for _, n := range names {
		sv := im.svs[n]
		m := yamlw.Map{}
		if sv.source != defaultSharedVolumesBase+"/"+n {
			m = append(m, yamlw.KV{Key: "source", Value: yamlw.Str(sv.source)})
		}
		if sv.path != "/shared/"+n {
			m = append(m, yamlw.KV{Key: "path", Value: yamlw.Str(sv.path)})
		}
		cs := append([]consumer(nil), sv.consumers...)
		sort.SliceStable(cs, func(i, j int) bool { return order[cs[i].x] < order[cs[j].x] })
		cm := yamlw.Map{}
		for _, c := range cs {
			access := "rw"
			if c.readonly {
				access = "ro"
			}
			cm = append(cm, yamlw.KV{Key: c.x.name, Value: yamlw.Str(access)})
		}
		m = append(m, yamlw.KV{Key: "consumers", Value: cm})
		out = append(out, yamlw.KV{Key: n, Value: m})
	}
	return out
}

// Summary is the line import prints once the file is written.
func (r *Result) Summary(file string) string {
	return "import: wrote " + file + " (project_name " + strconv.Quote(r.ProjectName) + ", " +
		plural.N(r.Domains, "domain") + ", " + plural.N(r.Machines, "machine") + ", " + plural.N(r.Policies, "network policy", "network policies") + ")"
}
