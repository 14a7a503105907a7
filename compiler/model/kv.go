package model

// Kind is the YAML type a value was written with. Every value in the model
// is already an Incus string (SPEC.md §2.2 item 8); Kind lets an emitter
// that must reproduce the PSOT "as written" (group_vars incus_profiles,
// host_vars instance_config) keep integers and booleans unquoted.
type Kind int

const (
	// String is a YAML string, or a value anklume generated.
	String Kind = iota
	// Int is a YAML integer.
	Int
	// Bool is a YAML boolean.
	Bool
)

// Pair is one key of an ordered map.
type Pair struct {
	Key   string
	Value string
	// Kind is the type the value was written with; String for generated
	// values.
	Kind Kind
}

// KV is an ordered map of Incus strings. Emitters iterate it in order to
// keep declaration order (SPEC.md §4.1); sorted output sorts a copy.
type KV []Pair

// Get returns the value of key k and whether it is present.
func (kv KV) Get(k string) (string, bool) {
	for _, p := range kv {
		if p.Key == k {
			return p.Value, true
		}
	}
	return "", false
}

// Has reports whether key k is present.
func (kv KV) Has(k string) bool {
	_, ok := kv.Get(k)
	return ok
}

// Keys returns the keys in order.
func (kv KV) Keys() []string {
	out := make([]string, len(kv))
	for i, p := range kv {
		out[i] = p.Key
	}
	return out
}

// Map returns the pairs as a Go map (order lost).
func (kv KV) Map() map[string]string {
	out := make(map[string]string, len(kv))
	for _, p := range kv {
		out[p.Key] = p.Value
	}
	return out
}

// Clone returns a copy of kv that can be changed without touching kv.
func (kv KV) Clone() KV {
	if kv == nil {
		return nil
	}
	return append(KV(nil), kv...)
}

// Set returns kv with k set to v: an existing key keeps its place and
// takes the new value, a new key is appended. kv itself is not changed.
func (kv KV) Set(k, v string) KV {
	out := kv.Clone()
	for i := range out {
		if out[i].Key == k {
			out[i] = Pair{Key: k, Value: v}
			return out
		}
	}
	return append(out, Pair{Key: k, Value: v})
}

// DeviceOrigin tells where a device of a machine comes from.
type DeviceOrigin int

const (
	// UserDevice is a device from the machine's own `devices`.
	UserDevice DeviceOrigin = iota
	// SharedVolumeDevice is an `sv-<vol>` device (SPEC.md §4.11).
	SharedVolumeDevice
	// PersistentDataDevice is a `pd-<vol>` device (SPEC.md §4.11).
	PersistentDataDevice
	// StorageVolumeDevice is the disk device of a storage volume with a
	// path (SPEC.md §5.5).
	StorageVolumeDevice
	// GPUDevice is the generated `gpu` device (SPEC.md §4.10).
	GPUDevice
	// NICDevice is a generated NIC (eth0 of an instance, eth<k> of the
	// firewall-multi-nic profile).
	NICDevice
)

// Device is one named Incus device with its properties in order.
type Device struct {
	Name   string
	Props  KV
	Origin DeviceOrigin
}

// Type returns the device's `type` property.
func (d Device) Type() string {
	t, _ := d.Props.Get("type")
	return t
}

// Devices is an ordered list of devices.
type Devices []Device

// Get returns the device named name, or nil.
func (ds Devices) Get(name string) *Device {
	for i := range ds {
		if ds[i].Name == name {
			return &ds[i]
		}
	}
	return nil
}

// Names returns the device names in order.
func (ds Devices) Names() []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.Name
	}
	return out
}
