/*
 * A minimal HTTP server for one file, to measure what the kernel itself
 * gives a blob pull over loopback, with no registry in the way:
 *
 *   serve-file PORT sendfile|copy FILE CHUNK
 *
 * Answers every connection on 127.0.0.1:PORT with FILE (a thread each) and closes it.
 * `sendfile` sends the body with sendfile(2), CHUNK bytes per call at most
 * (Berth's zero-copy path); `copy` reads CHUNK bytes with pread(2) and
 * writes them (what distribution 2.8.2's Go server does on this machine:
 * 32 KiB writes). The socket is non-blocking and waited on with poll(2)
 * when full, in both modes. See run.sh.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static void serve(int sock, int file, off_t size, bool use_sendfile, size_t chunk, char *buffer) {
  char head[160];
  int head_len = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\nConnection: close\r\n\r\n", (long long)size);
  if (write(sock, head, (size_t)head_len) != head_len) return;
  fcntl(sock, F_SETFL, fcntl(sock, F_GETFL) | O_NONBLOCK);
  off_t offset = 0;
  while (offset < size) {
    size_t want = (size_t)(size - offset) < chunk ? (size_t)(size - offset) : chunk;
    ssize_t n;
    if (use_sendfile) {
      n = sendfile(sock, file, &offset, want);
    } else {
      ssize_t got = pread(file, buffer, want, offset);
      if (got <= 0) return;
      n = write(sock, buffer, (size_t)got);
      if (n > 0) offset += n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      struct pollfd p = {.fd = sock, .events = POLLOUT};
      poll(&p, 1, -1);
      continue;
    }
    if (n <= 0) return;
  }
}

struct connection {
  int sock;
  const char *path;
  bool use_sendfile;
  size_t chunk;
};

static void *answer(void *arg) {
  struct connection *c = arg;
  char request[4096], *buffer = malloc(c->chunk);
  int one = 1;
  if (buffer && read(c->sock, request, sizeof request) > 0) {
    setsockopt(c->sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int file = open(c->path, O_RDONLY);
    struct stat st;
    if (file >= 0 && fstat(file, &st) == 0) serve(c->sock, file, st.st_size, c->use_sendfile, c->chunk, buffer);
    if (file >= 0) close(file);
  }
  close(c->sock);
  free(buffer);
  free(c);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 5 || (strcmp(argv[2], "sendfile") != 0 && strcmp(argv[2], "copy") != 0)) {
    fprintf(stderr, "usage: serve-file PORT sendfile|copy FILE CHUNK\n");
    return 2;
  }
  bool use_sendfile = strcmp(argv[2], "sendfile") == 0;
  size_t chunk = (size_t)atol(argv[4]);
  int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (chunk == 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(listener, 16) != 0) {
    perror("serve-file");
    return 1;
  }
  for (;;) {
    struct connection *c = malloc(sizeof *c);
    if (!c) return 1;
    c->sock = accept(listener, NULL, NULL);
    c->path = argv[3];
    c->use_sendfile = use_sendfile;
    c->chunk = chunk;
    pthread_t thread;
    if (c->sock < 0 || pthread_create(&thread, NULL, answer, c) != 0) {
      if (c->sock >= 0) close(c->sock);
      free(c);
      continue;
    }
    pthread_detach(thread);
  }
}
