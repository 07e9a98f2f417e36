// SPDX-License-Identifier: GPL-2.0
//
// The two transports that feed a Pager:
//
//  BlockingLoop  read(2) a batch of messages, run the handlers, write(2)
//                all their commands at once.  For tools and tests.
//  PagerLoop     io_uring: one ring per thread, `depth` FETCH commands in
//                flight per ring, each handler's first command returned as
//                its slot's COMMIT_AND_FETCH, completions handled in
//                batches and resubmitted with one io_uring_enter.
//
// Both start their threads in the constructor, which throws
// std::system_error if setup fails, and stop in the destructor.  The
// endpoint and the pager must outlive the loop.
#pragma once

#include <atomic>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include <machvm/fd.hpp>
#include <machvm/pager.hpp>

namespace machvm {

struct LoopOptions {
    unsigned threads = 1; // loop threads (and rings)
    unsigned depth = 16;  // FETCHes in flight per ring / messages per read(2)
    // PagerLoop: try IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN first.
    bool defer_taskrun = true;
};

// Shared by both loops: threads, the stop eventfd, the first error.
class LoopBase : public Loop {
  public:
    void stop() noexcept override;
    Result<void> wait() noexcept override;
    bool finished() const noexcept override;
    bool stopping() const noexcept { return stop_.load(std::memory_order_acquire); }

  protected:
    LoopBase(PagerEndpoint& ep, Pager& pager, const LoopOptions& opts);
    ~LoopBase() override;
    void record_error(std::error_code ec) noexcept;
    // Starts a loop thread running `body` (noexcept in practice).
    void spawn(std::function<void()> body);
    // For a constructor that throws after spawning: stop and join.
    void start_failed() noexcept;
    int stop_fd() const noexcept { return stop_fd_.get(); }

    PagerEndpoint& ep_;
    Pager& pager_;
    LoopOptions opts_;
    std::vector<std::thread> threads_;

  private:
    Fd stop_fd_;
    std::atomic<bool> stop_{false};
    std::atomic<unsigned> running_{0};
    std::mutex join_mu_;
    std::mutex mu_;
    std::error_code error_;
};

class BlockingLoop final : public LoopBase {
  public:
    // Makes the endpoint non-blocking (the threads poll it).
    BlockingLoop(PagerEndpoint& ep, Pager& pager, const LoopOptions& opts = {});
    ~BlockingLoop() override;

  private:
    struct Worker;
    void run(unsigned index) noexcept;
    std::vector<std::unique_ptr<Worker>> workers_;
};

class PagerLoop final : public LoopBase {
  public:
    PagerLoop(PagerEndpoint& ep, Pager& pager, const LoopOptions& opts = {});
    ~PagerLoop() override;

    // Whether this kernel's io_uring has IORING_OP_URING_CMD (a probe ring).
    static bool uring_cmd_supported() noexcept;

  private:
    struct Ring;
    void run(Ring& ring) noexcept;
    std::vector<std::unique_ptr<Ring>> rings_;
};

} // namespace machvm
