// coro.hpp: a header-only C++17 wrapper over libcoro's C interface (include/coro.h).
//
//   coro::coroutine c([](void *limit) -> void * { ... return result; });   // NEW, nothing runs
//   void *v = c.switch_to(arg);                                             // run / resume it
//
// - coro::coroutine owns one coroutine (move-only, RAII). Its entry is any callable taking a
//   `void *` (the first value switched in) and returning `void *` (what its parent receives when it
//   finishes) or `void`.
// - coro::handle is a non-owning reference (coro::current(), coro::main(), coroutine::get()).
// - Every failing C call throws coro::status (the status code and coro_strerror's message).
// - An exception that escapes an entry finishes that coroutine and is rethrown in the coroutine
//   that is resumed next (its parent, as for a return value), out of that coroutine's pending
//   switch_to()/kill(): exceptions cross a switch to the resumer, never a C frame.
// - kill() makes the target's pending switch_to() throw coro::killed; if the entry lets it
//   propagate, the coroutine finishes quietly (like a return of killed::reason()). Destroying a
//   suspended coroutine kills it first, so its stack unwinds and its destructors run.
//
// Rules inherited from the C library: a coroutine belongs to the thread that created it; values are
// plain `void *`; the header has the full contract (docs/semantics.md, docs/c-api.md). The wrapper
// keeps its entry in the coroutine's userdata: do not change it with coro_set_userdata.
// Link with libcoro (`pkg-config --cflags --libs coro`).
#ifndef CORO_HPP
#define CORO_HPP

#include <coro.h>

#include <cstdint>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace coro {

// A status code other than CORO_OK, as an exception. what() is coro_strerror(code()), prefixed
// with the name of the call that failed.
class status : public std::runtime_error {
public:
  explicit status(coro_status_t code) : std::runtime_error(coro_strerror(code)), code_(code) {}
  status(coro_status_t code, const std::string &context)
      : std::runtime_error(context + ": " + coro_strerror(code)), code_(code) {}
  coro_status_t code() const noexcept { return code_; }

private:
  coro_status_t code_;
};

// Thrown out of a pending switch_to() (or kill()) of a coroutine that another one killed.
// Letting it escape the entry finishes the coroutine normally, with reason() as its result.
class killed : public status {
public:
  explicit killed(void *reason) : status(CORO_KILLED), reason_(reason) {}
  void *reason() const noexcept { return reason_; }

private:
  void *reason_;
};

enum class state : std::uint32_t {
  created = CORO_NEW,  // not started yet
  running = CORO_RUNNING,
  suspended = CORO_SUSPENDED,
  dead = CORO_DEAD,
};

namespace detail {

inline void check(coro_status_t st, const char *what) {
  if (st != CORO_OK) throw status(st, what);
}

// An exception that finished a coroutine, waiting for the coroutine resumed after it. One per
// thread: control passes from the dying coroutine straight to the next one, which takes it.
inline std::exception_ptr &carried() {
  static thread_local std::exception_ptr pending;
  return pending;
}

// After any switch returns in this thread: rethrow what a finished coroutine left behind.
inline void rethrow_carried() {
  std::exception_ptr &p = carried();
  if (p) {
    std::exception_ptr e = std::move(p);
    p = nullptr;
    std::rethrow_exception(e);
  }
}

// What a switch or kill that returned `st` with `received` means for the caller.
inline void *after_switch(coro_status_t st, void *received, const char *what) {
  if (st == CORO_OK) {
    rethrow_carried();
    return received;
  }
  if (st == CORO_KILLED) {
    // A kill resumes this coroutine directly; any carried exception is for whoever runs next
    // after a death, which this is not.
    throw killed(received);
  }
  throw status(st, what);
}

// The entry of one coroutine. Lives on the heap (its address is the C userdata) so that moving
// the owning coroutine object does not move it. Type-erased by hand rather than with
// std::function, so that move-only callables (a lambda owning a unique_ptr) are accepted.
struct body {
  virtual ~body() = default;
  virtual void *run(void *value) = 0;
};

template <class F>
struct body_of final : body {
  F fn;
  template <class G>
  explicit body_of(G &&g) : fn(std::forward<G>(g)) {}
  void *run(void *value) override {
    if constexpr (std::is_void_v<std::invoke_result_t<F &, void *>>) {
      fn(value);
      return nullptr;
    } else {
      return fn(value);
    }
  }
};

// The C entry of every coroutine: runs the callable, turns exceptions into carried ones. Nothing
// may unwind out of here into the C library (noexcept: std::terminate rather than that).
inline void *trampoline(coro_t *self, void *value) noexcept {
  void *ud = nullptr;
  if (coro_userdata(self, &ud) != CORO_OK || ud == nullptr) return nullptr;
  body *b = static_cast<body *>(ud);
  try {
    return b->run(value);
  } catch (const killed &k) {
    return k.reason();  // dying of a kill is a normal end
  } catch (...) {
    carried() = std::current_exception();
    return nullptr;
  }
}

}  // namespace detail

// A non-owning reference to a coroutine of this thread (or a null one).
class handle {
public:
  handle() noexcept = default;
  explicit handle(coro_t *raw) noexcept : raw_(raw) {}

  coro_t *raw() const noexcept { return raw_; }
  explicit operator bool() const noexcept { return raw_ != nullptr; }
  friend bool operator==(handle a, handle b) noexcept { return a.raw_ == b.raw_; }
  friend bool operator!=(handle a, handle b) noexcept { return a.raw_ != b.raw_; }

  // Suspends the caller and runs this coroutine (starting it with `value` if it is new). Returns
  // what the next switch back into the caller carries. Throws coro::killed if the caller is killed
  // meanwhile, coro::status on error (nothing switched), or the exception that a finished coroutine
  // handed to the caller.
  void *switch_to(void *value = nullptr) const {
    void *received = nullptr;
    coro_status_t st = coro_switch(raw_, value, &received);
    return detail::after_switch(st, received, "coro_switch");
  }

  // Makes this coroutine's pending switch_to() throw coro::killed(reason) (a new coroutine just
  // becomes dead). Returns what the next switch back into the caller carries. Killing the running
  // coroutine (yourself) throws coro::killed(reason) at once.
  void *kill(void *reason = nullptr) const {
    void *received = nullptr;
    coro_status_t st = coro_kill(raw_, reason, &received);
    return detail::after_switch(st, received, "coro_kill");
  }

  coro::state state() const {
    coro_state_t s = CORO_DEAD;
    detail::check(coro_state(raw_, &s), "coro_state");
    return static_cast<coro::state>(s);
  }
  bool dead() const { return state() == coro::state::dead; }

  handle parent() const {
    coro_t *p = nullptr;
    detail::check(coro_parent(raw_, &p), "coro_parent");
    return handle(p);
  }
  void set_parent(handle p) const { detail::check(coro_set_parent(raw_, p.raw_), "coro_set_parent"); }

  std::uint64_t id() const {
    std::uint64_t v = 0;
    detail::check(coro_id(raw_, &v), "coro_id");
    return v;
  }
  std::string name() const {
    const char *n = nullptr;
    detail::check(coro_name(raw_, &n), "coro_name");
    return n ? std::string(n) : std::string();
  }

private:
  coro_t *raw_ = nullptr;
};

// The running coroutine of this thread (its main coroutine outside any other).
inline handle current() {
  coro_t *c = nullptr;
  detail::check(coro_current(&c), "coro_current");
  return handle(c);
}

// This thread's main coroutine: the thread's own stack.
inline handle main() {
  coro_t *c = nullptr;
  detail::check(coro_main(&c), "coro_main");
  return handle(c);
}

// Options for a new coroutine; 0 / empty mean the library's defaults.
struct options {
  std::size_t stack_size = 0;  // usable bytes, CORO_MIN_STACK_SIZE..CORO_MAX_STACK_SIZE
  std::string name;            // shown in the stack overflow message
  std::uint32_t flags = 0;     // coro_options_t.flags (CORO_FLAG_* bits; 0: the thread's default)
};

// One coroutine, owned. Move-only. The destructor releases it: a suspended one is killed first
// (coro::killed unwinds its stack), see ~coroutine.
class coroutine {
public:
  coroutine() noexcept = default;

  // A NEW coroutine that will run `fn(first value)`. Throws coro::status (e.g. CORO_EINVAL for a
  // bad stack size, CORO_ENOMEM) or std::bad_alloc.
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, coroutine>>>
  explicit coroutine(F &&fn, const options &opts = options()) {
    using entry = std::decay_t<F>;
    static_assert(std::is_invocable_v<entry &, void *>, "a coroutine entry is callable with a void *");
    static_assert(std::is_void_v<std::invoke_result_t<entry &, void *>> ||
                      std::is_convertible_v<std::invoke_result_t<entry &, void *>, void *>,
                  "a coroutine entry returns void or something convertible to void *");
    std::unique_ptr<detail::body> b = std::make_unique<detail::body_of<entry>>(std::forward<F>(fn));
    coro_options_t o;
    detail::check(coro_options_init(&o), "coro_options_init");
    if (opts.stack_size != 0) o.stack_size = opts.stack_size;
    if (!opts.name.empty()) o.name = opts.name.c_str();  // copied by coro_new
    o.flags = opts.flags;
    o.userdata = b.get();
    coro_t *c = nullptr;
    detail::check(coro_new(&detail::trampoline, &o, &c), "coro_new");
    raw_ = c;
    body_ = b.release();
  }

  coroutine(const coroutine &) = delete;
  coroutine &operator=(const coroutine &) = delete;
  coroutine(coroutine &&other) noexcept
      : raw_(std::exchange(other.raw_, nullptr)), body_(std::exchange(other.body_, nullptr)) {}
  coroutine &operator=(coroutine &&other) noexcept {
    if (this != &other) {
      release();
      raw_ = std::exchange(other.raw_, nullptr);
      body_ = std::exchange(other.body_, nullptr);
    }
    return *this;
  }

  // NEW or DEAD: destroyed. SUSPENDED: made a child of the caller and killed, so coro::killed
  // unwinds its stack and control comes back here; then destroyed. If it refuses to die (catches
  // coro::killed and switches away), or if it is running (destroying yourself), or if it belongs
  // to another thread, it cannot be released here and is leaked rather than crash the program.
  ~coroutine() { release(); }

  handle get() const noexcept { return handle(raw_); }
  operator handle() const noexcept { return handle(raw_); }
  explicit operator bool() const noexcept { return raw_ != nullptr; }
  coro_t *raw() const noexcept { return raw_; }

  void *switch_to(void *value = nullptr) const { return get().switch_to(value); }
  void *kill(void *reason = nullptr) const { return get().kill(reason); }
  coro::state state() const { return get().state(); }
  bool dead() const { return get().dead(); }
  handle parent() const { return get().parent(); }
  void set_parent(handle p) const { get().set_parent(p); }
  std::uint64_t id() const { return get().id(); }
  std::string name() const { return get().name(); }

private:
  void release() noexcept {
    if (raw_ == nullptr) return;
    coro_t *c = std::exchange(raw_, nullptr);
    detail::body *b = std::exchange(body_, nullptr);
    coro_state_t s = CORO_DEAD;
    if (coro_state(c, &s) != CORO_OK) return;  // other thread, or already gone: leak
    if (s == CORO_SUSPENDED) {
      coro_t *me = nullptr;
      if (coro_current(&me) != CORO_OK || coro_set_parent(c, me) != CORO_OK) return;
      void *ignored = nullptr;
      (void)coro_kill(c, nullptr, &ignored);
      // Anything it threw at us while dying has nowhere to go from a destructor.
      detail::carried() = nullptr;
      if (coro_state(c, &s) != CORO_OK) return;
    }
    if (s == CORO_NEW || s == CORO_DEAD) {
      if (coro_destroy(c) == CORO_OK) delete b;
    }
  }

  coro_t *raw_ = nullptr;
  detail::body *body_ = nullptr;
};

}  // namespace coro

#endif  // CORO_HPP
