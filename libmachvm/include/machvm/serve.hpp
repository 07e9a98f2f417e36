// SPDX-License-Identifier: GPL-2.0
//
// The life of a pager process, shared by pagers/*: open the device, make
// the loop the options ask for, hand the object out (--socket, --exec),
// and decide when to exit.
#pragma once

#include <memory>

#include <machvm/cli.hpp>
#include <machvm/device.hpp>
#include <machvm/loop.hpp>
#include <machvm/pager.hpp>

namespace machvm {

struct PagerSetup {
    Device device;
    machvm_version version{};
    PagerEndpoint endpoint;
};

// Opens /dev/machvm, checks the ABI version and features, creates a pager
// endpoint.  Throws std::system_error / std::runtime_error.
PagerSetup open_pager_setup();

// Rounds up to the page size and checks against max_object_size; throws
// UsageError naming `option`.
std::uint64_t checked_object_size(const PagerSetup& setup, std::uint64_t size, const char* option);

// The object a pager serves: `size` as checked_object_size makes it (the
// object's size), opts.max_prot and opts.attr.  Throws std::system_error.
MemoryObject create_pager_object(PagerSetup& setup, std::uint64_t size, const char* option,
                                 const PagerOptions& opts);

LoopOptions loop_options(const PagerOptions& opts) noexcept;

// io_uring unless --blocking; Auto falls back to the blocking loop (with a
// note on stderr) when the module or the kernel lacks the io_uring path.
std::unique_ptr<Loop> make_loop(const char* prog, PagerSetup& setup, Pager& pager,
                                const PagerOptions& opts);

// Serves `object` with `pager` until:
//  - --exec only: CMD has exited and the object has terminated (at once
//    if it was never mapped; at most 5 s after CMD's exit); returns CMD's
//    exit status (128+N: signal N).
//  - --socket (with or without --exec): SIGINT/SIGTERM, or CMD's exit.
//  - SIGINT/SIGTERM: returns 0.  The loop failing: returns 1.
// Blocks SIGINT, SIGTERM and SIGCHLD in the calling thread (call it before
// any thread is started) and takes them with sigtimedwait.
int serve(const char* prog, PagerSetup& setup, Pager& pager, MemoryObject object,
          const PagerOptions& opts);

// Blocks SIGINT, SIGTERM, SIGCHLD and SIGPIPE in the calling thread; every
// thread started afterwards inherits the mask.  serve() calls it; call it
// yourself before starting threads of your own.
void block_serve_signals() noexcept;

} // namespace machvm
