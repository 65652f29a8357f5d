package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/userbatch/userbatch/cmd/userbatch/internal/job"
)

type sandboxOptions struct {
	*globalOptions
	listen string
}

func newSandboxCmd(g *globalOptions) *cobra.Command {
	o := &sandboxOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "sandbox [--listen 127.0.0.1:8089]",
		Short: "Serve every fake vendor over HTTP and print a ready targets.yaml for them",
		Long: `Serve every fake vendor over HTTP, a SCIM 2.0 provider among them (target saas,
under /scim/v2), with the demo's users and any other user created on first use,
and print a targets.yaml for them on stdout, so that 'userbatch run' can be
tried for real. Stop it with Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, stop := o.catcher.untilSignal(cmd.Context())
			defer stop()
			return sandboxRun(ctx, o, nil)
		},
	}
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:8089", "address to serve on")
	return cmd
}

// sandboxRun serves until ctx ends. ready, when set, receives the address.
func sandboxRun(ctx context.Context, o *sandboxOptions, ready chan<- string) error {
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return job.BadInput("--listen %s: %v", o.listen, err)
	}
	fakes := newFakeVendors(true)
	fakes.seedDemo()
	srv := &http.Server{Handler: fakes.handler(), ReadHeaderTimeout: 10 * time.Second}
	base := "http://" + ln.Addr().String()
	fmt.Fprint(o.stdout, fakes.targetsYAML(base, 20))
	fmt.Fprintf(o.stderr, "sandbox: fake vendors on %s (Ctrl-C to stop). Save the YAML above as targets.yaml, then:\n"+
		"  userbatch run -c targets.yaml -o report testdata/demo.csv\n", base)
	if ready != nil {
		ready <- ln.Addr().String()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Let answers in progress finish; connections a client opened and never
	// used would hold Shutdown for seconds, so close what remains after that.
	shutdown, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if err := srv.Close(); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
