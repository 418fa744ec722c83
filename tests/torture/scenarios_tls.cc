// TLS conversations for the byte-exactness torture: a real OpenSSL client and server talk to
// each other through memory BIOs, taking turns, and every flight's bytes are recorded. The
// test's peers then replay those bytes through netprof with random splits and pauses: the relay
// sees real handshakes (TLS 1.2 and 1.3, SNI, ALPN, session resumption, a refused version) and
// real records, and its TLS tracker must count them.
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <memory>
#include <mutex>
#include <string>

#include "scenarios.h"

namespace netprof::torture {
namespace {

size_t pick(std::mt19937_64& rng, size_t lo, size_t hi) {  // inclusive
  return std::uniform_int_distribution<size_t>(lo, hi)(rng);
}
bool chance(std::mt19937_64& rng, double p) { return std::bernoulli_distribution(p)(rng); }

template <typename T, void (*Free)(T*)>
struct Deleter {
  void operator()(T* p) const { Free(p); }
};
using CtxPtr = std::unique_ptr<SSL_CTX, Deleter<SSL_CTX, SSL_CTX_free>>;
using SslPtr = std::unique_ptr<SSL, Deleter<SSL, SSL_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY, EVP_PKEY_free>>;
using CertPtr = std::unique_ptr<X509, Deleter<X509, X509_free>>;
using SessionPtr = std::unique_ptr<SSL_SESSION, Deleter<SSL_SESSION, SSL_SESSION_free>>;

// One self-signed P-256 certificate for every scenario (made once: key generation is slow).
struct Identity {
  KeyPtr key;
  CertPtr cert;
};

const Identity& identity() {
  static const Identity id = [] {
    Identity i;
    i.key.reset(EVP_EC_gen("P-256"));
    i.cert.reset(X509_new());
    if (!i.key || !i.cert) return i;
    X509_set_version(i.cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(i.cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(i.cert.get()), -3600);
    X509_gmtime_adj(X509_getm_notAfter(i.cert.get()), 86400);
    X509_NAME* name = X509_get_subject_name(i.cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("torture.test"), -1, -1, 0);
    X509_set_issuer_name(i.cert.get(), name);
    X509_set_pubkey(i.cert.get(), i.key.get());
    X509_sign(i.cert.get(), i.key.get(), EVP_sha256());
    return i;
  }();
  return id;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void*) {
  static const unsigned char kServerPrefs[] = "\x02h2\x08http/1.1";
  unsigned char* chosen = nullptr;
  if (SSL_select_next_proto(&chosen, outlen, kServerPrefs, sizeof kServerPrefs - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_NOACK;
  *out = chosen;
  return SSL_TLSEXT_ERR_OK;
}

// One server context for every scenario: it holds the key of the session tickets, so that a
// later client can resume a session an earlier one got.
SSL_CTX* server_context() {
  static const CtxPtr ctx = [] {
    CtxPtr c(SSL_CTX_new(TLS_server_method()));
    if (!c) return c;
    SSL_CTX_use_certificate(c.get(), identity().cert.get());
    SSL_CTX_use_PrivateKey(c.get(), identity().key.get());
    SSL_CTX_set_alpn_select_cb(c.get(), select_alpn, nullptr);
    SSL_CTX_set_session_id_context(c.get(), reinterpret_cast<const unsigned char*>("torture"), 7);
    return c;
  }();
  return ctx.get();
}

// Sessions to resume, one per protocol version (TLS 1.2, TLS 1.3). Made on first use, after
// OpenSSL registered its exit-time cleanup, so that they are freed before it runs (static
// objects die in reverse order of construction, interleaved with atexit handlers).
std::mutex sessions_mu;
SessionPtr* saved_sessions() {
  static SessionPtr sessions[2];
  return sessions;
}

std::string drain(BIO* b) {
  std::string out;
  char buf[16384];
  int n;
  while ((n = BIO_read(b, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

// Reads what the peer sent until nothing more is readable (application data is dropped: it is
// the wire bytes that are compared); handshake messages after the handshake (tickets) are
// processed on the way.
void read_all(SSL* ssl) {
  char buf[16384];
  while (SSL_read(ssl, buf, sizeof buf) > 0) {
  }
}

// Writes `n` random bytes as application data (OpenSSL cuts them into records).
bool write_random(std::mt19937_64& rng, SSL* ssl, size_t n) {
  const std::string data = random_bytes(rng, n);
  size_t at = 0;
  while (at < data.size()) {
    // Several SSL_write calls of random sizes: records of many sizes.
    const size_t piece = std::min(data.size() - at, pick(rng, 1, 40000));
    size_t written = 0;
    if (SSL_write_ex(ssl, data.data() + at, piece, &written) != 1) return false;
    at += written;
  }
  return true;
}

size_t app_size(std::mt19937_64& rng) {
  switch (pick(rng, 0, 9)) {
    case 0: return 0;
    case 1:
    case 2:
    case 3:
    case 4: return pick(rng, 1, 500);
    case 5:
    case 6:
    case 7:
    case 8: return pick(rng, 500, 30000);
    default: return pick(rng, 30000, 300000);
  }
}

}  // namespace

Scenario make_tls_scenario(uint32_t id, std::mt19937_64& rng) {
  Scenario s;
  s.id = id;
  s.kind = Kind::kTls;
  const Identity& ident = identity();
  if (!ident.key || !ident.cert) return s;

  const bool tls13 = chance(rng, 0.6);
  // Now and then a client that wants only TLS 1.3 meets a server that stops at 1.2: an alert
  // (from whichever side notices first) ends the handshake, a failure the report must show.
  const bool refused = chance(rng, 0.08);
  const int version = tls13 ? TLS1_3_VERSION : TLS1_2_VERSION;
  SSL_CTX* sctx = server_context();
  CtxPtr client_ctx(SSL_CTX_new(TLS_client_method()));
  if (sctx == nullptr || !client_ctx) return s;
  SslPtr server(SSL_new(sctx));
  SslPtr client(SSL_new(client_ctx.get()));
  if (!server || !client) return s;
  if (refused) {
    SSL_set_min_proto_version(client.get(), TLS1_3_VERSION);
    SSL_set_max_proto_version(client.get(), TLS1_3_VERSION);
    SSL_set_max_proto_version(server.get(), TLS1_2_VERSION);
  } else {
    SSL_set_min_proto_version(client.get(), version);
    SSL_set_max_proto_version(client.get(), version);
    SSL_set_min_proto_version(server.get(), TLS1_2_VERSION);
  }
  static const char* kNames[] = {"a.torture.test", "b.torture.test", ""};
  s.server_name = kNames[pick(rng, 0, 2)];
  if (!s.server_name.empty()) SSL_set_tlsext_host_name(client.get(), s.server_name.c_str());
  switch (pick(rng, 0, 3)) {
    case 0: break;
    case 1:
      SSL_set_alpn_protos(client.get(), reinterpret_cast<const unsigned char*>("\x02h2"), 3);
      break;
    case 2:
      SSL_set_alpn_protos(client.get(),
                          reinterpret_cast<const unsigned char*>("\x02h2\x08http/1.1"), 12);
      break;
    default:
      SSL_set_alpn_protos(client.get(), reinterpret_cast<const unsigned char*>("\x08http/1.1"), 9);
  }
  const int slot = tls13 ? 1 : 0;
  if (!refused && chance(rng, 0.3)) {
    std::lock_guard lock(sessions_mu);
    if (saved_sessions()[slot]) SSL_set_session(client.get(), saved_sessions()[slot].get());
  }

  // Memory BIOs: what one side writes is taken out, recorded, and given to the other.
  BIO* c_in = BIO_new(BIO_s_mem());
  BIO* c_out = BIO_new(BIO_s_mem());
  BIO* s_in = BIO_new(BIO_s_mem());
  BIO* s_out = BIO_new(BIO_s_mem());
  SSL_set_bio(client.get(), c_in, c_out);
  SSL_set_bio(server.get(), s_in, s_out);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());

  auto turn = [&](const std::string& client_part) {
    s.client_bytes += client_part;
    s.request_ends.push_back(s.client_bytes.size());
    BIO_write(s_in, client_part.data(), static_cast<int>(client_part.size()));
  };
  auto answer = [&](const std::string& server_part) {
    s.server_bytes += server_part;
    s.response_ends.push_back(s.server_bytes.size());
    BIO_write(c_in, server_part.data(), static_cast<int>(server_part.size()));
  };

  // Handshake, flight by flight.
  bool client_done = false, server_done = false, failed = false;
  for (int flight = 0; flight < 8 && !(client_done && server_done) && !failed; ++flight) {
    if (!client_done) {
      const int r = SSL_do_handshake(client.get());
      if (r == 1) client_done = true;
      if (r <= 0 && SSL_get_error(client.get(), r) != SSL_ERROR_WANT_READ) failed = true;
    }
    turn(drain(c_out));
    if (failed) break;
    if (!server_done) {
      const int r = SSL_do_handshake(server.get());
      if (r == 1) server_done = true;
      if (r <= 0 && SSL_get_error(server.get(), r) != SSL_ERROR_WANT_READ) failed = true;
    }
    answer(drain(s_out));
  }
  // A side that gave up sends nothing more; the other's turn is then empty.
  if (s.response_ends.size() < s.request_ends.size()) answer("");
  ERR_clear_error();
  s.tls_failure = !(client_done && server_done);
  if (s.tls_failure != refused) {
    s.client_bytes.clear();  // not the conversation planned: the test says so
    return s;
  }
  if (refused) return s;  // which side's alert, after which hello, is OpenSSL's business
  s.tls_version = SSL_version(client.get()) == TLS1_3_VERSION ? "TLS1.3" : "TLS1.2";

  // Application data: a few request/response rounds, then close_notify both ways.
  const size_t rounds = pick(rng, 1, 5);
  for (size_t i = 0; i < rounds; ++i) {
    if (!write_random(rng, client.get(), app_size(rng))) break;
    turn(drain(c_out));
    read_all(server.get());
    if (!write_random(rng, server.get(), app_size(rng))) break;
    answer(drain(s_out));
    read_all(client.get());  // also takes TLS 1.3 tickets in
  }
  SSL_shutdown(client.get());
  turn(drain(c_out));
  read_all(server.get());
  SSL_shutdown(server.get());
  answer(drain(s_out));
  ERR_clear_error();
  {
    std::lock_guard lock(sessions_mu);
    if (SSL_SESSION* sess = SSL_get1_session(client.get())) saved_sessions()[slot].reset(sess);
  }
  return s;
}

}  // namespace netprof::torture
