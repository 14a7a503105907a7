package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// BenchmarkClusterApply times the apply from empty of the cluster scenario
// (clusterPSOT: 4 domains, 7 busybox containers, 4 bridges) on the
// 3-member test cluster, and of the same infrastructure on the host's
// single daemon (no targets; names cs- instead of cl-, since LXC cgroup
// names are host-wide). Run it alone:
//
//	go test ./e2e -run '^$' -bench ClusterApply -benchtime 1x -v
//
// Every figure is printed with the load average it was taken under.
func BenchmarkClusterApply(b *testing.B) {
	if os.Geteuid() != 0 {
		if os.Getenv(requireEnv) != "" {
			b.Fatalf("needs root (and %s is set)", requireEnv)
		}
		b.Skip("skipped: needs root, the Incus daemon and the test cluster")
	}
	bin := benchBinary(b)
	single := regexp.MustCompile(`(?m)^    target: .*\n`).ReplaceAllString(clusterPSOT, "")
	single = strings.ReplaceAll(strings.ReplaceAll(single, "cl-", "cs-"), "e2e-cluster", "e2e-cluster-single")
	sides := []struct {
		name, psot string
		domains    []string
	}{
		{"single", single, []string{"cs-a", "cs-b", "cs-c", "cs-d"}},
		{"cluster", clusterPSOT, clusterDomains},
	}
	for _, side := range sides {
		b.Run(side.name, func(b *testing.B) {
			if side.name == "cluster" {
				if err := startCluster(); err != nil {
					b.Fatal(err)
				}
				for k, v := range clusterEnv {
					b.Setenv(k, v)
				}
			} else {
				benchNeedIncus(b)
			}
			dir := b.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "infra.yml"), []byte(side.psot), 0o644); err != nil {
				b.Fatal(err)
			}
			cleanupDomains(side.domains)
			b.Cleanup(func() { cleanupDomains(side.domains) })
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cmd := exec.Command(bin, "apply", "--yes", "--no-nftables", "--no-provision")
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "ANKLUME_IMAGE_MAP=images:debian/13="+testImage,
					"ANKLUME_CONTEXT_DIR="+b.TempDir(), "ANKLUME_HOST_RESOURCES=cpu=10,memory=40GiB",
					"ANKLUME_SKIP_HOST_SUBNET_CHECK=1", "NO_COLOR=1")
				start := time.Now()
				out, err := cmd.CombinedOutput()
				total += time.Since(start)
				if err != nil {
					b.Fatalf("apply on the %s: %v\n%s", side.name, err, out)
				}
				b.StopTimer()
				cleanupDomains(side.domains)
				b.StartTimer()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/apply")
			b.Logf("%s: apply of 4 domains, 7 containers from empty: %s (load %s)",
				side.name, (total / time.Duration(b.N)).Round(10*time.Millisecond), loadAvg())
		})
	}
}
