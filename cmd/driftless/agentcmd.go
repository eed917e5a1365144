package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"driftless.dev/driftless/agent"
)

func runAgent(args []string, _ io.Writer, stderr io.Writer) int {
	cfg := agent.DefaultConfig()
	// First pass: find --config, so that flags can override the file.
	if path := findFlag(args, "config"); path != "" {
		if err := agent.LoadConfigFile(path, &cfg); err != nil {
			fmt.Fprintln(stderr, "driftless agent:", err)
			return 2
		}
	}
	fs := flag.NewFlagSet("agent", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.String("config", "", "YAML config file (flags override it)")
	applyLists := cfg.RegisterFlags(fs)
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "driftless agent: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	cfg.Version = version
	if err := applyLists(); err != nil {
		fmt.Fprintln(stderr, "driftless agent:", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(stderr, "driftless agent: --log-level:", err)
		return 2
	}
	if err := cfg.Validate(); err != nil {
		fmt.Fprintln(stderr, "driftless agent:", err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	if v := os.Getenv(agent.ClockRateEnv); v != "" {
		rate, err := strconv.ParseFloat(v, 64)
		if err != nil || rate < 1 {
			fmt.Fprintf(stderr, "driftless agent: %s=%q: want a number >= 1\n", agent.ClockRateEnv, v)
			return 2
		}
		cfg.ClockRate = rate
		log.Warn("test clock: Jobs and CronJobs run on a clock faster than real time", "rate", rate)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := agent.Run(ctx, cfg, log); err != nil {
		log.Error("agent failed", "err", err)
		return 1
	}
	return 0
}

// findFlag returns the value of -name/--name in args without parsing the
// others.
func findFlag(args []string, name string) string {
	for i, a := range args {
		for _, p := range []string{"-" + name, "--" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if strings.HasPrefix(a, p+"=") {
				return strings.TrimPrefix(a, p+"=")
			}
		}
	}
	return ""
}
