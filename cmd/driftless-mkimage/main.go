// Command driftless-mkimage writes a busybox OCI image archive built from
// Debian's busybox-static, for the demo and for sites without a registry:
//
//	driftless-mkimage -o busybox.tar -name docker.io/library/busybox:latest
package main

import (
	"flag"
	"fmt"
	"os"

	"driftless.dev/driftless/internal/ociimage"
)

func main() {
	out := flag.String("o", "busybox.tar", "output archive")
	name := flag.String("name", "docker.io/library/busybox:latest", "image name")
	flag.Parse()
	if err := ociimage.BuildBusyboxFile(*out, *name); err != nil {
		fmt.Fprintln(os.Stderr, "driftless-mkimage:", err)
		os.Exit(1)
	}
}
