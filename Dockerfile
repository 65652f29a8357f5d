# The userbatch image for a CronJob: the static binary, the CA certificates
# its HTTPS requests need, a non-root user, nothing else. It pulls no image:
# scripts/image.sh builds the binary on the host (CGO_ENABLED=0) and stages
# it with the host's CA bundle as the build context (README, "Container image").
FROM scratch
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY userbatch /userbatch
USER 65532:65532
ENTRYPOINT ["/userbatch"]
