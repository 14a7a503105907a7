package backup

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"strings"

	"filippo.io/age"
	"github.com/lxc/incus/v6/shared/api"

	"github.com/anklume/anklume/compiler/emit/incus"
	"github.com/anklume/anklume/internal/incusx"
)

// RestoreOptions describe one restore.
type RestoreOptions struct {
	// Path is the backup file; Identities decrypt a .age file.
	Path       string
	Identities []age.Identity
	// Project and Instance name the new instance.
	Project, Instance string
	// KeepOwnership keeps the user.anklume.* keys: the restored (name,
	// domain) is a machine of the PSOT. Otherwise the keys, the
	// instance-level eth0 (its static IP belongs to the original machine)
	// and the recorded MAC addresses (volatile.<nic>.hwaddr) are removed.
	KeepOwnership bool
	// NoStart leaves the restored instance stopped.
	NoStart bool
	// Progress hears the phases: "uploading" with the percent of the file
	// sent, "importing" while the daemon unpacks it (its own progress
	// text as the detail), then "starting".
	Progress Progress
}

// ExistingError is a restore onto an existing instance name.
type ExistingError struct{ Project, Instance string }

func (e *ExistingError) Error() string {
	return fmt.Sprintf("instance %s/%s already exists", e.Project, e.Instance)
}

// Restore imports the backup as a new instance, strips it unless
// KeepOwnership, and starts it unless NoStart.
func Restore(ctx context.Context, srv incusx.InstanceOps, o RestoreOptions) error {
	if Encrypted(o.Path) && len(o.Identities) == 0 {
		return &EncryptedError{Path: o.Path}
	}
	if _, _, err := srv.Instance(ctx, o.Project, o.Instance); err == nil {
		return &ExistingError{Project: o.Project, Instance: o.Instance}
	} else if !incusx.IsNotFound(err) {
		return err
	}
	o.Progress.step("uploading")
	r, err := open(o.Path, o.Identities, func(n, size int64) {
		if size > 0 && n >= size {
			o.Progress.step("importing")
			o.Progress.detail("")
			return
		}
		o.Progress.detail(uploadText(n, size))
	})
	if err != nil {
		return err
	}
	if o.Progress.Detail != nil {
		ctx = incusx.WithProgress(ctx, o.Progress.Detail)
	}
	err = srv.ImportInstance(ctx, o.Project, o.Instance, r)
	r.Close()
	if err != nil {
		return err
	}
	if !o.KeepOwnership {
		inst, etag, err := srv.Instance(ctx, o.Project, o.Instance)
		if err != nil {
			return err
		}
		put := inst.Writable()
		put.Config = maps.Clone(put.Config)
		for k := range put.Config {
			if strings.HasPrefix(k, incus.OwnershipKeyPrefix) {
				delete(put.Config, k)
			}
		}
		for k := range put.Config {
			// A new MAC address: the original machine may still run.
			// Incus keeps a volatile key that a PUT omits, so it is
			// replaced.
			if strings.HasPrefix(k, "volatile.") && strings.HasSuffix(k, ".hwaddr") {
				mac, err := randomMAC()
				if err != nil {
					return err
				}
				put.Config[k] = mac
			}
		}
		put.Devices = maps.Clone(put.Devices)
		delete(put.Devices, "eth0")
		if err := srv.UpdateInstance(ctx, o.Project, o.Instance, put, etag); err != nil {
			// Never leave an owned copy behind: apply would take it
			// for an orphan of the machine it was made from.
			if derr := srv.DeleteInstance(context.WithoutCancel(ctx), o.Project, o.Instance); derr != nil {
				return errors.Join(err, derr)
			}
			return err
		}
	}
	if o.NoStart {
		return nil
	}
	o.Progress.step("starting")
	o.Progress.detail("")
	return srv.UpdateInstanceState(ctx, o.Project, o.Instance, startReq())
}

func startReq() api.InstanceStatePut { return api.InstanceStatePut{Action: incusx.ActionStart} }

// randomMAC returns a MAC address in the Incus range 10:66:6a:xx:xx:xx.
func randomMAC() (string, error) {
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("generating a MAC address: %w", err)
	}
	return fmt.Sprintf("10:66:6a:%02x:%02x:%02x", b[0], b[1], b[2]), nil
}
