// Command startwait starts a server command and measures how long it takes until a URL
// answers 200: it prints "<milliseconds> <pid>" and exits, leaving the server running
// (in its own session) for the caller to measure further and stop. Used by kernel.sh.
//
//	startwait -url http://127.0.0.1:18081/readyz -log out/serve.log -- ./parvis serve
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"syscall"
	"time"
)

func main() {
	url := flag.String("url", "", "URL polled until it answers 200")
	logFile := flag.String("log", os.DevNull, "file receiving the server's stdout and stderr")
	limit := flag.Duration("timeout", 30*time.Second, "give up (and kill the server) after this long")
	flag.Parse()
	if *url == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: startwait -url URL [-log FILE] -- COMMAND [ARGS]")
		os.Exit(2)
	}
	out, err := os.OpenFile(*logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "startwait:", err)
		os.Exit(1)
	}
	cmd := exec.Command(flag.Arg(0), flag.Args()[1:]...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives this process
	client := &http.Client{Timeout: time.Second}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "startwait:", err)
		os.Exit(1)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	for time.Since(start) < *limit {
		select {
		case err := <-exited:
			fmt.Fprintf(os.Stderr, "startwait: the server exited before it was ready (%v); see %s\n", err, *logFile)
			os.Exit(1)
		default:
		}
		if res, err := client.Get(*url); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				fmt.Printf("%.1f %d\n", float64(time.Since(start).Microseconds())/1000, cmd.Process.Pid)
				return
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	fmt.Fprintf(os.Stderr, "startwait: %s not ready after %s; see %s\n", *url, *limit, *logFile)
	os.Exit(1)
}
