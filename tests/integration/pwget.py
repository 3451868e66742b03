"""pwget: a static in-cluster API client (C, with OpenSSL) for integration tests to run inside
pods, where it does what client-go's InClusterConfig does (see the C source's comment)."""
import os
import subprocess

PWGET_C = r"""/* pwget: an in-cluster API client as client-go's InClusterConfig is, for the integration
   tests' pods (static, with OpenSSL; run inside pods only). busybox's own TLS offers no cipher suite for
   the apiserver's ECDSA certificate.
     pwget PATH    GET https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT/PATH, the server
                   verified against the service account's ca.crt and for the host's address,
                   with its token as the bearer token; prints the status line, then the body */
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SA "/var/run/secrets/kubernetes.io/serviceaccount/"

static int fail(const char* what) {
  printf("error %s\n", what);
  ERR_print_errors_fp(stdout);
  return 2;
}

int main(int argc, char** argv) {
  const char* host = getenv("KUBERNETES_SERVICE_HOST");
  const char* port = getenv("KUBERNETES_SERVICE_PORT");
  if (argc != 2 || !host || !port) return fail("usage: pwget PATH (in a pod)");
  char token[8192] = {0};
  FILE* f = fopen(SA "token", "r");
  if (!f) return fail("no token");
  size_t n = fread(token, 1, sizeof token - 1, f);
  fclose(f);
  token[n] = 0;
  struct sockaddr_in a = {0};
  a.sin_family = AF_INET;
  a.sin_port = htons((unsigned short)atoi(port));
  if (inet_pton(AF_INET, host, &a.sin_addr) != 1) return fail("KUBERNETES_SERVICE_HOST");
  int s = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(s, (struct sockaddr*)&a, sizeof a) != 0) return fail("connect");
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (!SSL_CTX_load_verify_locations(ctx, SA "ca.crt", NULL)) return fail("ca.crt");
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  SSL* ssl = SSL_new(ctx);
  X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host);
  SSL_set_fd(ssl, s);
  if (SSL_connect(ssl) != 1) return fail("handshake");
  char req[9000];
  int len = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: Bearer %s\r\n"
                     "Accept: application/json\r\nConnection: close\r\n\r\n",
                     argv[1], host, port, token);
  if (SSL_write(ssl, req, len) != len) return fail("write");
  char buf[16384];
  int r;
  while ((r = SSL_read(ssl, buf, sizeof buf)) > 0) fwrite(buf, 1, (size_t)r, stdout);
  return 0;
}
"""


def build(workdir, out):
    """Compiles pwget into out (a static binary, any busybox pod can run it from a hostPath)."""
    src = os.path.join(workdir, "pwget.c")
    with open(src, "w") as f:
        f.write(PWGET_C)
    subprocess.run(["gcc", "-O2", "-static", "-o", out, src, "-lssl", "-lcrypto", "-lpthread"],
                   check=True, capture_output=True, timeout=120)
