// Tests of bindings/cpp/coro.hpp (C++17). Built by ci/test-cpp.sh with -Wall -Wextra -Werror, run
// plain and under AddressSanitizer/UBSan.
#include "coro.hpp"

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

static int failures = 0;
static int checks = 0;

#define CHECK(cond)                                                            \
  do {                                                                         \
    ++checks;                                                                  \
    if (!(cond)) {                                                             \
      std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                              \
    }                                                                          \
  } while (0)

// Expects `expr` to throw coro::status with `code`.
#define CHECK_STATUS(expr, want)                                               \
  do {                                                                         \
    coro_status_t got_ = CORO_OK;                                              \
    try {                                                                      \
      (void)(expr);                                                            \
    } catch (const coro::status &e) {                                          \
      got_ = e.code();                                                         \
    }                                                                          \
    CHECK(got_ == (want));                                                     \
  } while (0)

static void *iv(std::uintptr_t v) { return reinterpret_cast<void *>(v); }
static std::uintptr_t vi(void *p) { return reinterpret_cast<std::uintptr_t>(p); }

static_assert(!std::is_copy_constructible_v<coro::coroutine>, "move-only");
static_assert(!std::is_copy_assignable_v<coro::coroutine>, "move-only");
static_assert(std::is_nothrow_move_constructible_v<coro::coroutine>, "movable");
static_assert(std::is_nothrow_move_assignable_v<coro::coroutine>, "movable");
static_assert(std::is_base_of_v<std::exception, coro::status>, "status is an exception");
static_assert(std::is_base_of_v<coro::status, coro::killed>, "killed is a status");

// A lambda with captured state, values in both directions, return to the parent.
static void test_lambda_values() {
  coro::handle main_c = coro::main();
  int calls = 0;
  coro::coroutine c([&](void *limit) -> void * {
    for (std::uintptr_t i = 0; i < vi(limit); i++) {
      ++calls;
      void *back = main_c.switch_to(iv(i * 10));
      CHECK(vi(back) == i + 100);
    }
    return iv(7777);
  });
  CHECK(c.state() == coro::state::created);
  CHECK(calls == 0);  // lazy start
  void *v = c.switch_to(iv(3));
  std::uintptr_t i = 0;
  while (vi(v) != 7777) {
    CHECK(vi(v) == i * 10);
    CHECK(c.state() == coro::state::suspended);
    v = c.switch_to(iv(i + 100));
    ++i;
  }
  CHECK(i == 3);
  CHECK(calls == 3);
  CHECK(c.dead());
  CHECK(c.parent() == main_c);
}

// A void-returning entry delivers nullptr; current() inside is the coroutine itself.
static void test_void_entry() {
  coro::handle seen;
  coro::coroutine c([&](void *) { seen = coro::current(); });
  void *v = c.switch_to(iv(1));
  CHECK(v == nullptr);
  CHECK(seen == c.get());
  CHECK(c.dead());
  CHECK(coro::current() == coro::main());
}

// Moving the owner keeps the coroutine (and its captured entry) alive and usable.
static void test_move() {
  coro::handle main_c = coro::main();
  std::string captured = "captured state survives moves";
  coro::coroutine a([main_c, captured](void *) -> void * {
    main_c.switch_to(iv(captured.size()));
    return iv(1);
  });
  coro::coroutine b(std::move(a));
  CHECK(!a);
  CHECK(b);
  CHECK(vi(b.switch_to()) == captured.size());
  std::vector<coro::coroutine> v;
  v.push_back(std::move(b));
  coro::coroutine c;
  c = std::move(v.back());
  CHECK(vi(c.switch_to()) == 1);
  CHECK(c.dead());
  // Move-assigning over a live coroutine releases the old one.
  coro::coroutine d([](void *) -> void * { return nullptr; });
  d = coro::coroutine([](void *) -> void * { return iv(5); });
  CHECK(vi(d.switch_to()) == 5);
}

// Move-only callables (owning a unique_ptr) and plain functions are entries too; the callable is
// destroyed with the coroutine, whether it ran or not.
static void *plain_function(void *v) { return iv(vi(v) * 3); }

static void test_move_only_entry() {
  auto owned = std::make_unique<int>(21);
  coro::coroutine c([p = std::move(owned)](void *) -> void * { return iv(static_cast<std::uintptr_t>(*p) * 2); });
  CHECK(vi(c.switch_to()) == 42);
  coro::coroutine f(plain_function);
  CHECK(vi(f.switch_to(iv(5))) == 15);
  auto counter = std::make_shared<int>(0);
  {
    coro::coroutine never([counter](void *) -> void * { return nullptr; });
    CHECK(counter.use_count() == 2);
  }
  CHECK(counter.use_count() == 1);  // a never-started coroutine's callable is released too
}

struct custom_error : std::runtime_error {
  int payload;
  explicit custom_error(int p) : std::runtime_error("custom"), payload(p) {}
};

// An exception escaping an entry is rethrown, with its type, out of the resumer's switch_to().
static void test_exception_to_resumer() {
  coro::coroutine c([](void *v) -> void * {
    if (vi(v) == 1) throw custom_error(42);
    return nullptr;
  });
  bool caught = false;
  try {
    c.switch_to(iv(1));
  } catch (const custom_error &e) {
    caught = true;
    CHECK(e.payload == 42);
  }
  CHECK(caught);
  CHECK(c.dead());
  // Nothing left pending: the next switch is clean.
  coro::coroutine d([](void *) -> void * { return iv(9); });
  CHECK(vi(d.switch_to()) == 9);
}

// The exception goes to whoever is resumed when the thrower dies: its parent, even when that is not
// the coroutine that switched to it last. The parent may catch it and carry on, or let it go on to
// its own parent.
static void test_exception_nested(bool outer_catches) {
  coro::handle main_c = coro::main();
  coro::coroutine outer([&](void *) -> void * {
    coro::coroutine inner([&](void *) -> void * {
      main_c.switch_to(coro::current().raw());  // out to main, which resumes us directly
      throw std::logic_error("from inner");
    });
    if (!outer_catches) {
      inner.switch_to();
      return iv(1);  // not reached: inner's exception passes through
    }
    try {
      inner.switch_to();
    } catch (const std::logic_error &e) {
      CHECK(std::strcmp(e.what(), "from inner") == 0);
      CHECK(inner.dead());
      return iv(99);
    }
    return iv(2);
  });
  coro::handle inner(static_cast<coro_t *>(outer.switch_to()));
  CHECK(inner.state() == coro::state::suspended);
  CHECK(inner.parent() == outer.get());
  if (outer_catches) {
    CHECK(vi(inner.switch_to()) == 99);  // inner dies -> outer catches, returns -> main
  } else {
    bool caught = false;
    try {
      inner.switch_to();
    } catch (const std::logic_error &) {
      caught = true;
    }
    CHECK(caught);
  }
  CHECK(outer.dead());
}

// Errors of the C library come out as coro::status with the code and coro_strerror's text.
static void test_status_errors() {
  coro::coroutine c([](void *) -> void * { return nullptr; });
  c.switch_to();
  CHECK(c.dead());
  CHECK_STATUS(c.switch_to(), CORO_EDEAD);
  CHECK_STATUS(c.kill(), CORO_EDEAD);
  try {
    c.switch_to();
  } catch (const coro::status &e) {
    CHECK(std::string(e.what()).find(coro_strerror(CORO_EDEAD)) != std::string::npos);
    CHECK(std::string(e.what()).find("coro_switch") != std::string::npos);
  }
  coro::options tiny;
  tiny.stack_size = 1;
  CHECK_STATUS(coro::coroutine([](void *) -> void * { return nullptr; }, tiny), CORO_EINVAL);
  CHECK_STATUS(coro::handle().switch_to(), CORO_EINVAL);
  CHECK_STATUS(coro::handle().state(), CORO_EINVAL);
  // A cycle of parents is refused.
  coro::coroutine a([](void *) -> void * { return nullptr; });
  coro::coroutine b([](void *) -> void * { return nullptr; });
  b.set_parent(a);
  CHECK_STATUS(a.set_parent(b), CORO_ECYCLE);
  // Options that are accepted.
  coro::options named;
  named.name = "worker-1";
  named.stack_size = 64 * 1024;
  coro::coroutine n([](void *) -> void * { return iv(3); }, named);
  CHECK(n.name() == "worker-1");
  CHECK(n.id() != 0);
  CHECK(vi(n.switch_to()) == 3);
}

struct flag_on_destroy {
  bool *flag;
  ~flag_on_destroy() { *flag = true; }
};

// kill() makes the pending switch_to() throw coro::killed; unwinding runs destructors and the
// coroutine finishes with the reason as its result.
static void test_kill() {
  coro::handle main_c = coro::main();
  bool cleaned = false;
  coro::coroutine c([&](void *) -> void * {
    flag_on_destroy guard{&cleaned};
    for (;;) main_c.switch_to();
  });
  c.switch_to();
  CHECK(!cleaned);
  CHECK(vi(c.kill(iv(55))) == 55);
  CHECK(cleaned);
  CHECK(c.dead());

  // Killing a new coroutine: dead without running.
  bool ran = false;
  coro::coroutine n([&](void *) -> void * {
    ran = true;
    return nullptr;
  });
  n.kill();
  CHECK(!ran);
  CHECK(n.dead());

  // A coroutine may catch coro::killed, look at the reason, and refuse to die.
  coro::coroutine stubborn([&](void *) -> void * {
    std::uintptr_t seen = 0;
    try {
      main_c.switch_to();
    } catch (const coro::killed &k) {
      seen = vi(k.reason());
      CHECK(k.code() == CORO_KILLED);
    }
    main_c.switch_to(iv(seen + 1));  // still alive
    return iv(seen + 2);
  });
  stubborn.switch_to();
  CHECK(vi(stubborn.kill(iv(10))) == 11);
  CHECK(stubborn.state() == coro::state::suspended);
  CHECK(vi(stubborn.switch_to()) == 12);
  CHECK(stubborn.dead());

  // Killing yourself throws at once.
  coro::coroutine self_kill([](void *) -> void * {
    try {
      coro::current().kill(iv(4));
    } catch (const coro::killed &k) {
      return iv(vi(k.reason()) * 2);
    }
    return nullptr;
  });
  CHECK(vi(self_kill.switch_to()) == 8);
}

// Destroying a suspended coroutine kills it first: its stack unwinds, destructors run, and control
// comes back to the destructor's caller even when the coroutine's parent is someone else.
static void test_destructor_unwinds() {
  coro::handle main_c = coro::main();
  bool cleaned = false;
  {
    coro::coroutine c([&](void *) -> void * {
      flag_on_destroy guard{&cleaned};
      std::vector<std::string> heap_state(100, std::string(64, 'x'));  // ASan: must be freed
      main_c.switch_to();
      return nullptr;
    });
    c.switch_to();
  }
  CHECK(cleaned);

  cleaned = false;
  {
    coro::coroutine keeper([](void *) -> void * { return nullptr; });
    coro::coroutine c([&](void *) -> void * {
      flag_on_destroy guard{&cleaned};
      main_c.switch_to();
      return nullptr;
    });
    c.switch_to();
    c.set_parent(keeper);  // the destructor re-parents it to the caller before killing
  }
  CHECK(cleaned);
  CHECK(coro::current() == main_c);
}

// A coroutine belongs to its thread: another thread gets coro::status(CORO_ETHREAD).
static void test_threads() {
  coro::coroutine c([](void *) -> void * { return iv(1); });
  coro_status_t seen = CORO_OK;
  std::thread t([&] {
    try {
      c.switch_to();
    } catch (const coro::status &e) {
      seen = e.code();
    }
    // Each thread has its own main coroutine and can run its own coroutines.
    coro::coroutine mine([](void *v) -> void * { return iv(vi(v) + 1); });
    if (vi(mine.switch_to(iv(41))) != 42) seen = CORO_EPANIC;
  });
  t.join();
  CHECK(seen == CORO_ETHREAD);
  CHECK(vi(c.switch_to()) == 1);
}

// Switching to yourself returns the value at once.
static void test_switch_to_self() {
  coro::coroutine c([](void *) -> void * { return coro::current().switch_to(iv(17)); });
  CHECK(vi(c.switch_to()) == 17);
  CHECK(coro::main().switch_to(iv(3)) == iv(3));
}

// Many coroutines, alive at once, with exceptions on every other one (ASan checks for leaks).
static void test_many() {
  coro::handle main_c = coro::main();
  std::vector<coro::coroutine> cs;
  const std::uintptr_t n = 2000;
  for (std::uintptr_t i = 0; i < n; i++) {
    cs.emplace_back([main_c, i](void *) -> void * {
      std::string s = "coroutine " + std::to_string(i);
      main_c.switch_to(iv(i));
      if (i % 2) throw std::runtime_error(s);
      return iv(s.size());
    });
  }
  std::uintptr_t sum = 0;
  for (auto &c : cs) sum += vi(c.switch_to());
  CHECK(sum == n * (n - 1) / 2);
  std::uintptr_t thrown = 0, returned = 0;
  for (std::uintptr_t i = 0; i < n; i++) {
    try {
      void *v = cs[i].switch_to();
      returned += (vi(v) == ("coroutine " + std::to_string(i)).size());
    } catch (const std::runtime_error &e) {
      thrown += (std::string(e.what()) == "coroutine " + std::to_string(i));
    }
  }
  CHECK(thrown == n / 2);
  CHECK(returned == n / 2);
  // Half of a fresh batch left suspended: the vector's destructor kills and unwinds them.
  std::vector<coro::coroutine> pending;
  for (int i = 0; i < 100; i++) {
    pending.emplace_back([main_c](void *) -> void * {
      std::vector<int> held(1000, 1);
      main_c.switch_to();
      return nullptr;
    });
    if (i % 2) pending.back().switch_to();
  }
}

#ifdef CORO_FLAG_COPYING
// Copying mode (coroutines share one stack, their used part saved on switch-out): values,
// exceptions carried to the resumer, and the destructor's kill-and-unwind all work the same.
static void test_copying_mode() {
  coro::handle main_c = coro::main();
  coro::options o;
  o.flags = CORO_FLAG_COPYING;
  bool cleaned = false;
  std::vector<coro::coroutine> cs;
  for (std::uintptr_t i = 0; i < 50; i++) {
    cs.emplace_back(
        [main_c, i, &cleaned](void *) -> void * {
          flag_on_destroy guard{&cleaned};
          std::string local = "on a shared stack " + std::to_string(i);
          main_c.switch_to(iv(i));
          if (i % 2) throw std::runtime_error(local);
          main_c.switch_to(iv(local.size()));
          return nullptr;
        },
        o);
  }
  std::uintptr_t sum = 0;
  for (auto &c : cs) sum += vi(c.switch_to());
  CHECK(sum == 50 * 49 / 2);
  std::uintptr_t thrown = 0;
  for (std::uintptr_t i = 0; i < 50; i++) {
    try {
      CHECK(vi(cs[i].switch_to()) == ("on a shared stack " + std::to_string(i)).size());
    } catch (const std::runtime_error &e) {
      thrown += std::string(e.what()) == "on a shared stack " + std::to_string(i);
    }
  }
  CHECK(thrown == 25);
  cs.clear();  // the even ones are suspended: killed, unwound, destroyed
  CHECK(cleaned);
}
#endif

int main() {
  test_lambda_values();
  test_void_entry();
  test_move();
  test_move_only_entry();
  test_exception_to_resumer();
  test_exception_nested(true);
  test_exception_nested(false);
  test_status_errors();
  test_kill();
  test_destructor_unwinds();
  test_threads();
  test_switch_to_self();
  test_many();
#ifdef CORO_FLAG_COPYING
  test_copying_mode();
#endif
  if (failures) {
    std::fprintf(stderr, "test_coro_hpp: %d of %d checks failed\n", failures, checks);
    return 1;
  }
  std::printf("test_coro_hpp: all %d checks passed\n", checks);
  return 0;
}
