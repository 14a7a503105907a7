package verify

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Outcomes of a probe.
const (
	// Accepted: a TCP connection was accepted, or a UDP datagram or an
	// ICMP echo was answered.
	Accepted = "accepted"
	// Refused: a TCP RST or an ICMP port unreachable came back; the
	// firewall let the packet through and nothing listens there.
	Refused = "refused"
	// Timeout: nothing came back; the packet was dropped (or, for UDP, a
	// listener stayed silent).
	Timeout = "timeout"
	// Unreachable: an ICMP host or network unreachable came back.
	Unreachable = "unreachable"
	// Failed: the probe could not run (see the detail).
	Failed = "failed"
)

// Reachable reports whether an outcome means the packet got through.
func Reachable(outcome string) bool { return outcome == Accepted || outcome == Refused }

// inNetns runs fn on a locked OS thread that has joined the network
// namespace of process pid (/proc/PID/ns/net), then returns the thread to
// its own namespace. Sockets created by fn stay in pid's namespace. When
// the thread cannot be returned, it stays locked and stuck is true: the
// caller's goroutine must then end, so that the runtime retires the thread
// instead of reusing one in a guest's namespace.
func inNetns(pid int, fn func() (string, string)) (outcome, detail string, stuck bool) {
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return Failed, fmt.Sprintf("opening this thread's network namespace: %v", err), false
	}
	defer orig.Close()
	target, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		return Failed, fmt.Sprintf("opening the network namespace of pid %d: %v", pid, err), false
	}
	defer target.Close()
	if err := setns(target); err != nil {
		runtime.UnlockOSThread()
		return Failed, fmt.Sprintf("entering the network namespace of pid %d: %v", pid, err), false
	}
	outcome, detail = fn()
	if err := setns(orig); err != nil {
		return outcome, detail, true
	}
	runtime.UnlockOSThread()
	return outcome, detail, false
}

// setns joins the network namespace f refers to.
func setns(f *os.File) error {
	return unix.Setns(int(f.Fd()), unix.CLONE_NEWNET)
}

// classify maps a dial or read error to an outcome.
func classify(err error) (string, string) {
	var ne net.Error
	switch {
	case err == nil:
		return Accepted, ""
	case errors.Is(err, syscall.ECONNREFUSED):
		return Refused, ""
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return Unreachable, err.Error()
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return Timeout, ""
	}
	return Failed, err.Error()
}

// probeTCP opens a TCP connection to addr:port.
func probeTCP(addr netip.Addr, port int, timeout time.Duration) (string, string) {
	d := net.Dialer{Timeout: timeout}
	c, err := d.Dial("tcp4", netip.AddrPortFrom(addr, uint16(port)).String())
	if c != nil {
		c.Close()
	}
	return classify(err)
}

// probeUDP sends one datagram to addr:port (a DNS query for port 53, so a
// DNS server answers) and waits for an answer or an ICMP error.
func probeUDP(addr netip.Addr, port int, timeout time.Duration) (string, string) {
	c, err := net.DialTimeout("udp4", netip.AddrPortFrom(addr, uint16(port)).String(), timeout)
	if err != nil {
		return classify(err)
	}
	defer c.Close()
	payload := []byte("anklume verify\n")
	if port == 53 {
		payload = dnsQuery
	}
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write(payload); err != nil {
		return classify(err)
	}
	buf := make([]byte, 512)
	_, err = c.Read(buf)
	return classify(err)
}

// dnsQuery asks for the NS records of the root zone (id 0x616e).
var dnsQuery = []byte{0x61, 0x6e, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1}

// probeICMP sends one ICMP echo request on a raw socket and waits for the
// matching reply from addr.
func probeICMP(addr netip.Addr, id uint16, timeout time.Duration) (string, string) {
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_RAW|syscall.SOCK_CLOEXEC, syscall.IPPROTO_ICMP)
	if err != nil {
		return Failed, fmt.Sprintf("raw ICMP socket: %v", err)
	}
	defer syscall.Close(fd)
	pkt := make([]byte, 16)
	pkt[0] = 8 // echo request
	binary.BigEndian.PutUint16(pkt[4:], id)
	binary.BigEndian.PutUint16(pkt[6:], 1)
	copy(pkt[8:], "anklume!")
	binary.BigEndian.PutUint16(pkt[2:], checksum(pkt))
	if err := syscall.Sendto(fd, pkt, 0, &syscall.SockaddrInet4{Addr: addr.As4()}); err != nil {
		return classify(err)
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 1500)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return Timeout, ""
		}
		tv := syscall.NsecToTimeval(left.Nanoseconds())
		if err := syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv); err != nil {
			return Failed, err.Error()
		}
		n, from, err := syscall.Recvfrom(fd, buf, 0)
		if errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return Failed, err.Error()
		}
		sa, ok := from.(*syscall.SockaddrInet4)
		if !ok || n < 20 {
			continue
		}
		ihl := int(buf[0]&0x0f) * 4
		if n < ihl+8 {
			continue
		}
		icmp := buf[ihl:n]
		if netip.AddrFrom4(sa.Addr) == addr && icmp[0] == 0 && binary.BigEndian.Uint16(icmp[4:]) == id {
			return Accepted, ""
		}
		if icmp[0] == 3 && len(icmp) >= 8+20+8 { // destination unreachable about our request
			inner := icmp[8:]
			iihl := int(inner[0]&0x0f) * 4
			if len(inner) >= iihl+8 && binary.BigEndian.Uint16(inner[iihl+4:]) == id {
				return Unreachable, "ICMP destination unreachable"
			}
		}
	}
}

// checksum is the Internet checksum of b.
func checksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
