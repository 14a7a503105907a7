package plan

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func sp(s string) *string { return &s }

// specExample is the plan of the SPEC.md §9.4 example, given out of order.
func specExample() *Plan {
	return &Plan{
		Domains: []DomainInfo{{Name: "work", Project: "work", Network: "net-work"}},
		Changes: []Change{
			{Action: Delete, Kind: KindInstance, Name: "work/tmp", Domain: "work", Orphan: true},
			{Action: Create, Kind: KindInstance, Name: "work/web", Domain: "work", Reason: "lxc, images:debian/13, 10.120.0.1"},
			{Action: Replace, Kind: KindInstance, Name: "work/old", Domain: "work", Reason: "replace: type lxc -> vm"},
			{Action: Renumber, Kind: KindInstance, Name: "work/mail", Domain: "work", Reason: "renumber",
				Diff: []Diff{{Path: `devices.eth0["ipv4.address"]`, Before: sp("10.120.0.3"), After: sp("10.120.0.2")}}},
			{Action: Update, Kind: KindInstance, Name: "work/db", Domain: "work", Reason: "restart", Restart: true,
				Diff: []Diff{
					{Path: `config["limits.memory"]`, Before: sp("2GiB"), After: sp("4GiB")},
					{Path: `config["snapshots.expiry"]`, After: sp("30d")},
					{Path: `config["boot.autostart"]`, Before: sp("true")},
				}},
			{Action: Start, Kind: KindInstance, Name: "work/cache", Domain: "work", Reason: "start"},
			{Action: Create, Kind: KindProfile, Name: "work/gpu", Domain: "work"},
			{Action: Update, Kind: KindProfile, Name: "work/default", Domain: "work",
				Diff: []Diff{{Path: `devices.eth0["security.ipv4_filtering"]`, Before: sp("false"), After: sp("true")}}},
		},
		Notes: []Note{{Kind: KindInstance, Name: "work/keep", Domain: "work", Text: "kept (protected orphan)", Orphan: true}},
	}
}

const specText = `Domain work (project work, network net-work)
  ~ profile work/default
      ~ devices.eth0["security.ipv4_filtering"]: "false" -> "true"
  + profile work/gpu
  ~ instance work/cache (start)
  ~ instance work/db (restart)
      ~ config["limits.memory"]: "2GiB" -> "4GiB"
      + config["snapshots.expiry"]: "30d"
      - config["boot.autostart"]: "true"
  ~ instance work/mail (renumber)
      ~ devices.eth0["ipv4.address"]: "10.120.0.3" -> "10.120.0.2"
  -/+ instance work/old (replace: type lxc -> vm)
  + instance work/web (lxc, images:debian/13, 10.120.0.1)
  ! instance work/keep: kept (protected orphan)
  - instance work/tmp

Plan: 3 to create, 4 to update, 2 to delete.
`

// TestRender compares whole outputs (SPEC.md §16 #57, §9.4).
func TestRender(t *testing.T) {
	tests := []struct {
		name  string
		plan  *Plan
		color bool
		want  string
	}{
		{name: "spec example", plan: specExample(), want: specText},
		{name: "no changes", plan: &Plan{Domains: []DomainInfo{{Name: "work", Project: "work", Network: "net-work"}}},
			want: "No changes. Incus matches the configuration.\n"},
		{
			name: "notes only, global notes first, orphan domain last",
			plan: &Plan{
				Domains: []DomainInfo{{Name: "work", Project: "work", Network: "net-work"}, {Name: "gone", Project: "gone", Orphan: true}},
				Notes: []Note{
					{Kind: KindImage, Name: "images:debian/13", Text: "mapped to local-debian by ANKLUME_IMAGE_MAP"},
					{Kind: KindDir, Name: "/srv/anklume/data/work/web/home", Text: "missing; apply creates it"},
					{Kind: KindProject, Name: "gone", Domain: "gone", Text: "kept (in use by instance gone/x)", Orphan: true},
				},
				Failed: []FailedDomain{{Domain: "work", Message: `image alias "x" not found on the Incus server`}},
			},
			want: `! image images:debian/13: mapped to local-debian by ANKLUME_IMAGE_MAP
! directory /srv/anklume/data/work/web/home: missing; apply creates it

Domain work (project work, network net-work)
  ! domain work: failed: image alias "x" not found on the Incus server

Domain gone (project gone)
  ! project gone: kept (in use by instance gone/x)

No changes. Incus matches the configuration.
`,
		},
		{
			name:  "colour",
			color: true,
			plan: &Plan{
				Domains: []DomainInfo{{Name: "w", Project: "w", Network: "net-w"}},
				Changes: []Change{
					{Action: Create, Kind: KindProject, Name: "w", Domain: "w"},
					{Action: Update, Kind: KindNetwork, Name: "net-w", Domain: "w", Diff: []Diff{{Path: `config["ipv4.nat"]`, Before: sp("true"), After: sp("false")}}},
					{Action: Replace, Kind: KindInstance, Name: "w/a", Domain: "w", Reason: "replace: type lxc -> vm"},
					{Action: Delete, Kind: KindInstance, Name: "w/b", Domain: "w", Orphan: true},
				},
				Notes: []Note{{Kind: KindInstance, Name: "w/c", Domain: "w", Text: "kept (protected orphan)", Orphan: true}},
			},
			want: "Domain w (project w, network net-w)\n" +
				"  \x1b[32m+\x1b[0m project w\n" +
				"  \x1b[33m~\x1b[0m network net-w\n" +
				"      \x1b[33m~\x1b[0m config[\"ipv4.nat\"]: \"true\" -> \"false\"\n" +
				"  \x1b[31m-/+\x1b[0m instance w/a (replace: type lxc -> vm)\n" +
				"  \x1b[31m-\x1b[0m instance w/b\n" +
				"  \x1b[35m!\x1b[0m instance w/c: kept (protected orphan)\n" +
				"\nPlan: 2 to create, 1 to update, 2 to delete.\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := Render(&b, tt.plan, RenderOptions{Color: tt.color}); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tt.want)
			}
		})
	}
}

// TestRenderJSON checks the --json schema of §9.4 (SPEC.md §16 #57).
func TestRenderJSON(t *testing.T) {
	p := specExample()
	p.Failed = []FailedDomain{{Domain: "lab", Message: "m"}}
	var b bytes.Buffer
	if err := RenderJSON(&b, p); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(b.String(), "}\n") || strings.Count(b.String(), "\n") != 1 {
		t.Errorf("not one JSON document on one line: %q", b.String())
	}
	keys := func(m map[string]any) string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sortStrings(out)
		return strings.Join(out, ",")
	}
	if got := keys(doc); got != "changes,failed_domains,format_version,notes,summary" {
		t.Errorf("top-level keys %s", got)
	}
	if doc["format_version"] != float64(1) {
		t.Errorf("format_version %v", doc["format_version"])
	}
	changes := doc["changes"].([]any)
	for _, c := range changes {
		if got := keys(c.(map[string]any)); got != "action,diff,domain,kind,name,project,reason,restart" {
			t.Fatalf("change keys %s", got)
		}
	}
	db := changes[4].(map[string]any)
	diff := db["diff"].([]any)
	if db["action"] != "update" || db["restart"] != true || len(diff) != 3 ||
		diff[1].(map[string]any)["before"] != nil || diff[2].(map[string]any)["after"] != nil {
		t.Errorf("db change %v", db)
	}
	if got := keys(doc["notes"].([]any)[0].(map[string]any)); got != "domain,kind,name,project,text" {
		t.Errorf("note keys %s", got)
	}
	if got := keys(doc["failed_domains"].([]any)[0].(map[string]any)); got != "domain,message" {
		t.Errorf("failed keys %s", got)
	}
	s := doc["summary"].(map[string]any)
	if s["create"] != float64(3) || s["update"] != float64(4) || s["delete"] != float64(2) ||
		s["replace"] != float64(1) || s["renumber"] != float64(1) || s["move"] != float64(0) {
		t.Errorf("summary %v", s)
	}

	b.Reset()
	if err := RenderJSON(&b, &Plan{}); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); got != `{"format_version":1,"changes":[],"notes":[],"failed_domains":[],"summary":{"create":0,"update":0,"delete":0,"replace":0,"renumber":0,"move":0}}`+"\n" {
		t.Errorf("empty plan: %s", got)
	}
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
