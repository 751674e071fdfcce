package overload

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// cpuMeter measures the share of the processor the process may use that
// it used since the last reading: the overload control's proof that a
// long queue is more work than the switch can do, not a pause.
type cpuMeter struct {
	capacity float64 // processors the process may use (a cgroup quota may make it a fraction)
	last     time.Duration
	at       time.Time
}

func newCPUMeter() *cpuMeter {
	return &cpuMeter{capacity: cpuCapacity(), last: processCPU(), at: time.Now()}
}

// share is the use since the last call over the capacity, 0..1 (a little
// over 1 is clipped).
func (m *cpuMeter) share(now time.Time) float64 {
	used := processCPU()
	wall := now.Sub(m.at)
	d := used - m.last
	m.last, m.at = used, now
	if wall <= 0 || m.capacity <= 0 {
		return 0
	}
	return min(1, float64(d)/float64(wall)/m.capacity)
}

// processCPU is the process's user and system time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// cpuCapacity is how many processors this process may use: those of its
// affinity mask (taskset, a pinned service), fewer when its cgroup has a
// CPU quota (cgroup v2 cpu.max, v1 cpu.cfs_quota_us).
func cpuCapacity() float64 {
	n := 1.0
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil && set.Count() > 0 {
		n = float64(set.Count())
	}
	if q := cgroupQuota(); q > 0 && q < n {
		n = q
	}
	return n
}

// cgroupQuota is the process's cgroup CPU quota in processors (0: none).
func cgroupQuota() float64 {
	data, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "": // v2
			if f := readFields("/sys/fs/cgroup" + parts[2] + "/cpu.max"); len(f) == 2 && f[0] != "max" {
				return ratio(f[0], f[1])
			}
		case strings.Contains(","+parts[1]+",", ",cpu,"): // v1
			dir := "/sys/fs/cgroup/cpu,cpuacct" + parts[2]
			if _, err := os.Stat(dir); err != nil {
				dir = "/sys/fs/cgroup/cpu" + parts[2]
			}
			q, p := readFields(dir+"/cpu.cfs_quota_us"), readFields(dir+"/cpu.cfs_period_us")
			if len(q) == 1 && len(p) == 1 && !strings.HasPrefix(q[0], "-") {
				return ratio(q[0], p[0])
			}
		}
	}
	return 0
}

func readFields(path string) []string {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return strings.Fields(string(data))
}

func ratio(a, b string) float64 {
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	if err1 != nil || err2 != nil || x <= 0 || y <= 0 {
		return 0
	}
	return x / y
}
