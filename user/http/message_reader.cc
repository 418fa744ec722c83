#include "http/message_reader.h"

#include <llhttp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <utility>

namespace netprof {
namespace {

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view HttpMessage::header(std::string_view lower_name) const {
  for (const auto& [name, value] : headers)
    if (name == lower_name) return value;
  return {};
}

bool HttpMessage::has_header(std::string_view lower_name) const {
  return std::any_of(headers.begin(), headers.end(),
                     [&](const auto& h) { return h.first == lower_name; });
}

bool HttpMessage::has_body() const {
  const std::string_view length = header("content-length");
  return has_header("transfer-encoding") || (!length.empty() && length != "0");
}

// How a feed goes: llhttp runs over the bytes and pauses itself at the end of the head (from
// on_headers_complete) and at the end of the message (from on_message_complete), so that it
// returns at the exact boundary and the caller learns how many bytes were the message's. While
// the head is incomplete it is given at most what is left of max_head_bytes: a head over the
// limit is found after reading the limit, never after buffering more.
struct HttpMessageReader::Impl {
  enum class Event : uint8_t { kNone, kHead, kMessage, kTooLarge };

  Impl(HttpMessageKind k, HttpReaderLimits l, bool h) : limits(l), head_only(h) {
    llhttp_init(&parser, k == HttpMessageKind::kRequest ? HTTP_REQUEST : HTTP_RESPONSE,
                &settings());
  }

  llhttp_t parser{};
  HttpReaderLimits limits;
  bool head_only;
  HttpMessage msg;
  std::string error;
  std::string field, value;  // the header being parsed
  size_t head_seen = 0;      // head bytes parsed so far
  Event event = Event::kNone;
  bool started = false;
  bool head_done = false;
  bool no_body = false;
  bool done = false;    // kHead or kMessage returned; next() before feeding more
  bool failed = false;  // for good: the connection is not HTTP/1.1 any more
  bool upgraded = false;
  bool over_limit = false;
  // head_only: the last message's head was returned, its end is still to be read (its body,
  // skipped, or only llhttp's step past a bodiless one) before the next message begins.
  bool in_tail = false;
  bool tail_upgrade = false;  // ... and it was an Upgrade/CONNECT

  static Impl& of(llhttp_t* p) { return *static_cast<Impl*>(p->data); }

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t settings = [] {
      llhttp_settings_t s;
      llhttp_settings_init(&s);
      s.on_message_begin = [](llhttp_t* p) {
        of(p).started = true;
        return 0;
      };
      s.on_method = [](llhttp_t* p, const char* at, size_t len) {
        of(p).msg.method.append(at, len);
        return 0;
      };
      s.on_url = [](llhttp_t* p, const char* at, size_t len) {
        of(p).msg.target.append(at, len);
        return 0;
      };
      s.on_header_field = [](llhttp_t* p, const char* at, size_t len) {
        of(p).field.append(at, len);
        return 0;
      };
      s.on_header_value = [](llhttp_t* p, const char* at, size_t len) {
        of(p).value.append(at, len);
        return 0;
      };
      s.on_header_value_complete = [](llhttp_t* p) {
        Impl& r = of(p);
        std::transform(r.field.begin(), r.field.end(), r.field.begin(),
                       [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
        r.msg.headers.emplace_back(std::move(r.field), std::string(trim_ows(r.value)));
        r.field.clear();
        r.value.clear();
        return 0;
      };
      s.on_headers_complete = [](llhttp_t* p) {
        Impl& r = of(p);
        r.msg.status = p->status_code;
        r.msg.version_major = p->http_major;
        r.msg.version_minor = p->http_minor;
        r.msg.keep_alive = llhttp_should_keep_alive(p) != 0;
        r.msg.upgrade = p->upgrade != 0;
        // Without a body the message ends here: on_message_complete pauses instead.
        if (r.no_body) return 1;
        r.event = Event::kHead;
        return static_cast<int>(HPE_PAUSED);
      };
      s.on_body = [](llhttp_t* p, const char* at, size_t len) {
        Impl& r = of(p);
        if (r.head_only) return 0;  // skipped, unread
        if (r.msg.body.size() + len > r.limits.max_body_bytes) {
          r.event = Event::kTooLarge;
          return static_cast<int>(HPE_USER);
        }
        r.msg.body.append(at, len);
        return 0;
      };
      s.on_message_complete = [](llhttp_t* p) {
        Impl& r = of(p);
        // Known only now for a message read to its end (a close-delimited response).
        r.msg.keep_alive = llhttp_should_keep_alive(p) != 0;
        r.event = Event::kMessage;
        return static_cast<int>(HPE_PAUSED);
      };
      return s;
    }();
    return settings;
  }

  Status fail(std::string message) {
    error = std::move(message);
    failed = true;
    return Status::kError;
  }

  Status fail_llhttp(llhttp_errno_t err) {
    if (event == Event::kTooLarge) {
      over_limit = true;
      return fail("body larger than " + std::to_string(limits.max_body_bytes) + " bytes");
    }
    const char* reason = llhttp_get_error_reason(&parser);
    return fail(std::string("bad HTTP/1.1 ") +
                (llhttp_get_type(&parser) == HTTP_REQUEST ? "request" : "response") + " (" +
                llhttp_errno_name(err) + (reason != nullptr ? std::string(": ") + reason : "") +
                ")");
  }

  void end_head(size_t used) {
    head_done = true;
    head_seen += used;
    msg.head_bytes = head_seen;
  }

  Status feed(std::string_view bytes, size_t& consumed) {
    consumed = 0;
    if (failed) return Status::kError;
    if (upgraded) return fail("the connection switched protocols after the last message");
    if (done) return fail("feed() after a complete message without next()");
    parser.data = this;  // the reader may have moved since the last call
    // After the head llhttp has one more step to take without a byte (a message without a
    // body completes there): it runs once more even when every byte is used.
    bool step = false;
    while (consumed < bytes.size() || std::exchange(step, false)) {
      std::string_view chunk = bytes.substr(consumed);
      if (!head_done && !in_tail) chunk = chunk.substr(0, limits.max_head_bytes - head_seen);
      event = Event::kNone;
      const llhttp_errno_t err = llhttp_execute(&parser, chunk.data(), chunk.size());
      size_t used = chunk.size();
      if (err != HPE_OK) {
        const char* pos = llhttp_get_error_pos(&parser);
        used = pos != nullptr && pos >= chunk.data() && pos <= chunk.data() + chunk.size()
                   ? static_cast<size_t>(pos - chunk.data())
                   : 0;
      }
      consumed += used;
      if (err == HPE_OK) {
        if (!head_done && !in_tail) {
          head_seen += used;
          if (head_seen >= limits.max_head_bytes) {
            over_limit = true;
            return fail("head larger than " + std::to_string(limits.max_head_bytes) + " bytes");
          }
        }
        continue;
      }
      if (err == HPE_PAUSED && event == Event::kHead) {
        llhttp_resume(&parser);
        end_head(used);
        if (head_only) {
          done = true;
          in_tail = true;
          return Status::kHead;
        }
        step = true;
        continue;
      }
      if (in_tail && err == HPE_PAUSED && event == Event::kMessage) {
        // The end of the message whose head was returned: the next one begins after it.
        in_tail = false;
        if (tail_upgrade) {
          upgraded = true;
          return fail("the connection switched protocols after the last message");
        }
        llhttp_resume(&parser);
        continue;
      }
      if ((err == HPE_PAUSED && event == Event::kMessage) || err == HPE_PAUSED_UPGRADE) {
        if (err == HPE_PAUSED) llhttp_resume(&parser);
        if (!head_done) end_head(used);
        // After an Upgrade/CONNECT (or a 101) llhttp stops: what follows is not HTTP/1.1.
        if (err == HPE_PAUSED_UPGRADE || msg.upgrade) upgraded = true;
        done = true;
        return Status::kMessage;
      }
      return fail_llhttp(err);
    }
    return Status::kNeedMore;
  }

  Status finish() {
    if (failed) return Status::kError;
    // Nothing of a message since the last one: a clean end (llhttp itself, still paused at the
    // last message's end, would call it an error).
    if (done || upgraded || !started) return Status::kNeedMore;
    parser.data = this;
    event = Event::kNone;
    const llhttp_errno_t err = llhttp_finish(&parser);
    if (err == HPE_PAUSED && event == Event::kMessage) {
      llhttp_resume(&parser);
      done = true;
      return Status::kMessage;
    }
    if (err != HPE_OK) return fail_llhttp(err);
    return fail("the connection closed in the middle of a message");
  }

  void next() {
    tail_upgrade = in_tail && msg.upgrade;
    msg = HttpMessage{};
    field.clear();
    value.clear();
    head_seen = 0;
    started = head_done = no_body = done = false;
  }
};

HttpMessageReader::HttpMessageReader(HttpMessageKind kind, HttpReaderLimits limits, bool head_only)
    : impl_(std::make_unique<Impl>(kind, limits, head_only)) {}
HttpMessageReader::~HttpMessageReader() = default;
HttpMessageReader::HttpMessageReader(HttpMessageReader&&) noexcept = default;
HttpMessageReader& HttpMessageReader::operator=(HttpMessageReader&&) noexcept = default;

HttpMessageReader::Status HttpMessageReader::feed(std::string_view bytes, size_t& consumed) {
  return impl_->feed(bytes, consumed);
}
HttpMessageReader::Status HttpMessageReader::finish() { return impl_->finish(); }
void HttpMessageReader::next() { impl_->next(); }
void HttpMessageReader::expect_no_body() { impl_->no_body = true; }
const HttpMessage& HttpMessageReader::message() const { return impl_->msg; }
HttpMessage HttpMessageReader::take_message() { return std::move(impl_->msg); }
const std::string& HttpMessageReader::error() const { return impl_->error; }
bool HttpMessageReader::over_limit() const { return impl_->over_limit; }
bool HttpMessageReader::started() const { return impl_->started; }

Expected<HttpMessage> read_http_message(int fd, HttpMessageReader& reader, std::string& carry,
                                        int timeout_ms, std::string* wire) {
  using Clock = std::chrono::steady_clock;
  const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
  char buffer[16384];
  while (true) {
    size_t used = 0;
    const auto status = reader.feed(carry, used);
    if (wire != nullptr) wire->append(carry, 0, used);
    carry.erase(0, used);
    if (status == HttpMessageReader::Status::kHead ||
        status == HttpMessageReader::Status::kMessage) {
      HttpMessage message = reader.take_message();
      reader.next();
      return message;
    }
    if (status == HttpMessageReader::Status::kError) return Error{reader.error()};
    int wait_ms = -1;
    if (timeout_ms >= 0) {
      wait_ms = static_cast<int>(std::max<int64_t>(
          0,
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count()));
    }
    pollfd p{fd, POLLIN, 0};
    const int ready = ::poll(&p, 1, wait_ms);
    if (ready < 0 && errno == EINTR) continue;
    if (ready < 0) return errno_error("poll", errno);
    if (ready == 0) return Error{"timed out reading an HTTP message"};
    const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
    if (n > 0) {
      carry.append(buffer, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (n < 0) return errno_error("recv", errno);
    const auto end = reader.finish();
    if (end == HttpMessageReader::Status::kMessage) {
      HttpMessage message = reader.take_message();
      reader.next();
      return message;
    }
    if (end == HttpMessageReader::Status::kError) return Error{reader.error()};
    return Error{"the connection closed before a message"};
  }
}

Expected<HttpMessage> parse_http_message(std::string_view bytes, HttpMessageKind kind,
                                         HttpReaderLimits limits) {
  HttpMessageReader reader(kind, limits);
  size_t used = 0;
  auto status = reader.feed(bytes, used);
  if (status == HttpMessageReader::Status::kNeedMore) status = reader.finish();
  if (status == HttpMessageReader::Status::kMessage) return reader.take_message();
  if (status == HttpMessageReader::Status::kError) return Error{reader.error()};
  return Error{"the bytes end before the message does"};
}

}  // namespace netprof
