package main

import (
	"math"
	"runtime"
	"runtime/metrics"
	"slices"
	"time"

	"github.com/gotasker/tasker"
)

// result is one line of output: a run's configuration and figures, or the
// medians of a configuration's runs.
type result struct {
	Stat  string `json:"stat"`           // "run" or "median"
	Run   int    `json:"run,omitempty"`  // 1-based, for a run
	Runs  int    `json:"runs,omitempty"` // runs a median is taken over
	Store string `json:"store"`
	Shape string `json:"shape"`

	Width  int `json:"width,omitempty"`
	Length int `json:"length,omitempty"`
	Depth  int `json:"depth,omitempty"` // 0 is a valid depth, omitted

	Tasks        int    `json:"tasks"`
	StepsPerTask int    `json:"steps_per_task"`
	Steps        int    `json:"steps"`
	Complete     int    `json:"complete"` // tasks that ended complete
	Workers      int    `json:"workers"`
	Submitters   int    `json:"submitters"` // 0: serial, one task at a time
	Sleep        string `json:"sleep"`
	Body         string `json:"body"`               // the steps' body: noop or decode
	Wait         string `json:"wait"`               // outcome or full
	Mode         string `json:"mode"`               // serial, open or closed
	Inflight     int    `json:"inflight"`           // -inflight: closed loop's tasks in flight; 0 otherwise
	Duration     string `json:"duration,omitempty"` // -duration, when the closed loop ran for a time
	MaxInflight  int    `json:"max_inflight"`       // the most tasks between Submit and Wait's return at once
	Procs        int    `json:"procs,omitempty"`    // -procs: engine processes; 0 (omitted) when the engine ran in this one

	Seconds       float64 `json:"seconds"` // first submit to last completion
	TasksPerSec   float64 `json:"tasks_per_sec"`
	StepsPerSec   float64 `json:"steps_per_sec"`
	P50us         float64 `json:"p50_us"` // submit-to-complete latency
	P99us         float64 `json:"p99_us"`
	MaxUs         float64 `json:"max_us"`
	AllocsPerStep float64 `json:"allocs_per_step"`
	PeakHeapMiB   float64 `json:"peak_heap_mib"`
	// CPUSeconds is the process's CPU time (user and system) over the
	// drive; CPUUtil is that over the drive's wall time × GOMAXPROCS. Both
	// are left out where the CPU time is not measured (not unix).
	CPUSeconds float64 `json:"cpu_seconds,omitempty"`
	CPUUtil    float64 `json:"cpu_util,omitempty"`
	// RequestsPerCommit is the store's write requests per transaction over
	// the drive, left out for a store that does not count them (see
	// commitCounter): today every store.
	RequestsPerCommit float64 `json:"requests_per_commit,omitempty"`

	GoVersion  string `json:"go_version"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
}

// summarize turns a run's samples and cost into its result.
func summarize(spec runSpec, samples []sample, u cost) result {
	r := describe(spec, len(samples))
	lat := make([]time.Duration, len(samples))
	first, last := samples[0].submitted, samples[0].done
	for i, s := range samples {
		lat[i] = s.done.Sub(s.submitted)
		if s.complete {
			r.Complete++
		}
		if s.submitted.Before(first) {
			first = s.submitted
		}
		if s.done.After(last) {
			last = s.done
		}
	}
	slices.Sort(lat)
	secs := last.Sub(first).Seconds()
	r.Seconds = round(secs, 6)
	r.TasksPerSec = round(float64(r.Tasks)/secs, 1)
	r.StepsPerSec = round(float64(r.Steps)/secs, 1)
	r.P50us = micros(percentile(lat, 0.50))
	r.P99us = micros(percentile(lat, 0.99))
	r.MaxUs = micros(lat[len(lat)-1])
	r.AllocsPerStep = round(float64(u.mallocs)/float64(r.Steps), 1)
	r.PeakHeapMiB = round(float64(u.peakHeap)/(1<<20), 2)
	r.MaxInflight = u.maxInflight
	if u.cpuKnown && u.wall > 0 {
		r.CPUSeconds = round(u.cpu.Seconds(), 3)
		r.CPUUtil = round(u.cpu.Seconds()/(u.wall.Seconds()*float64(r.GOMAXPROCS)), 3)
	}
	if u.commits > 0 {
		r.RequestsPerCommit = round(float64(u.requests)/float64(u.commits), 1)
	}
	return r
}

// describe returns the result of a run of spec that ran tasks, with its
// configuration filled in and no figures.
func describe(spec runSpec, tasks int) result {
	sh := spec.shape
	r := result{
		Stat: "run", Store: spec.store, Shape: sh.name,
		Tasks: tasks, StepsPerTask: len(sh.steps), Steps: tasks * len(sh.steps),
		Workers: spec.workers, Submitters: spec.submitters, Sleep: spec.sleep.String(),
		Body: spec.body, Wait: spec.wait, Mode: "open", Inflight: spec.inflight, Procs: spec.procs,
		GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
	}
	switch {
	case spec.inflight > 0:
		r.Mode, r.Submitters = "closed", spec.inflight
	case spec.submitters == 0:
		r.Mode = "serial"
	}
	if spec.duration > 0 {
		r.Duration = spec.duration.String()
	}
	if r.Workers == 0 {
		r.Workers = tasker.DefaultWorkers
	}
	switch sh.param {
	case "width":
		r.Width = sh.size
	case "length":
		r.Length = sh.size
	case "depth":
		r.Depth = sh.size
	}
	return r
}

// percentile returns the p-th quantile of sorted, by nearest rank.
func percentile(sorted []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func micros(d time.Duration) float64 { return round(float64(d)/float64(time.Microsecond), 1) }

// round rounds x to the given number of decimal places.
func round(x float64, places int) float64 {
	p := math.Pow(10, float64(places))
	return math.Round(x*p) / p
}

// median returns a line with the medians of the figures of runs, which share
// one configuration; complete is the least of the runs', max_inflight the
// most, and the other fields (tasks and steps among them, which vary with
// -duration) are the first run's.
func median(runs []result) result {
	m := runs[0]
	m.Stat, m.Run, m.Runs = "median", 0, len(runs)
	figures := []struct {
		dst *float64
		get func(result) float64
	}{
		{&m.Seconds, func(r result) float64 { return r.Seconds }},
		{&m.TasksPerSec, func(r result) float64 { return r.TasksPerSec }},
		{&m.StepsPerSec, func(r result) float64 { return r.StepsPerSec }},
		{&m.P50us, func(r result) float64 { return r.P50us }},
		{&m.P99us, func(r result) float64 { return r.P99us }},
		{&m.MaxUs, func(r result) float64 { return r.MaxUs }},
		{&m.AllocsPerStep, func(r result) float64 { return r.AllocsPerStep }},
		{&m.PeakHeapMiB, func(r result) float64 { return r.PeakHeapMiB }},
		{&m.CPUSeconds, func(r result) float64 { return r.CPUSeconds }},
		{&m.CPUUtil, func(r result) float64 { return r.CPUUtil }},
		{&m.RequestsPerCommit, func(r result) float64 { return r.RequestsPerCommit }},
	}
	for _, f := range figures {
		vs := make([]float64, len(runs))
		for i, r := range runs {
			vs[i] = f.get(r)
		}
		*f.dst = medianOf(vs)
	}
	m.Complete = slices.MinFunc(runs, func(a, b result) int { return a.Complete - b.Complete }).Complete
	m.MaxInflight = slices.MaxFunc(runs, func(a, b result) int { return a.MaxInflight - b.MaxInflight }).MaxInflight
	return m
}

// medianOf returns the median of vs, the mean of the middle two when there
// is an even number; it sorts vs.
func medianOf(vs []float64) float64 {
	slices.Sort(vs)
	n := len(vs)
	if n%2 == 1 {
		return vs[n/2]
	}
	return (vs[n/2-1] + vs[n/2]) / 2
}

// heapSampler records the largest heap size (bytes of heap objects, live or
// not yet swept: MemStats.HeapAlloc) seen while it runs. It reads
// runtime/metrics, which does not stop the world.
type heapSampler struct {
	quit chan struct{}
	done chan uint64
}

const heapObjectsMetric = "/memory/classes/heap/objects:bytes"

// startHeapSampler samples the heap size every interval until stop.
func startHeapSampler(every time.Duration) *heapSampler {
	h := &heapSampler{quit: make(chan struct{}), done: make(chan uint64, 1)}
	go h.loop(every)
	return h
}

func (h *heapSampler) loop(every time.Duration) {
	s := []metrics.Sample{{Name: heapObjectsMetric}}
	var peak uint64
	read := func() {
		metrics.Read(s)
		peak = max(peak, s[0].Value.Uint64())
	}
	t := time.NewTicker(every)
	defer t.Stop()
	read()
	for {
		select {
		case <-t.C:
			read()
		case <-h.quit:
			read()
			h.done <- peak
			return
		}
	}
}

// stop ends the sampling and returns the peak, in bytes.
func (h *heapSampler) stop() uint64 {
	close(h.quit)
	return <-h.done
}
