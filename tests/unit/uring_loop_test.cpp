// SPDX-License-Identifier: GPL-2.0
// PagerLoop without the module: on a socket the kernel refuses machvm's
// uring_cmd opcodes, so every FETCH fails at once; the loop must notice,
// end its threads and report the error, not spin or hang.  Skipped where
// io_uring (or IORING_OP_URING_CMD) is unavailable.
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <thread>

#include <machvm/loop.hpp>

#include "check.hpp"
#include "socket_endpoint.hpp"

using namespace machvm;

namespace {

class NullPager final : public Pager {
  public:
    void on_data_request(const machvm_msg&, Reply&) noexcept override {}
};

bool wait_finished(const Loop& loop, int ms) {
    for (int i = 0; i < ms / 10 && !loop.finished(); ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return loop.finished();
}

} // namespace

int main() {
    if (!PagerLoop::uring_cmd_supported()) {
        std::printf("uring_loop_test: no IORING_OP_URING_CMD here; skipped\n");
        return unit::finish("uring_loop_test");
    }
    for (bool defer : {true, false}) {
        auto [ep, peer] = unit::socket_endpoint(SOCK_STREAM);
        NullPager pager;
        LoopOptions o;
        o.threads = 2;
        o.depth = 8;
        o.defer_taskrun = defer;
        try {
            PagerLoop loop(ep, pager, o);
            CHECK(wait_finished(loop, 5000));
            Result<void> r = loop.wait();
            CHECK(!r.ok());
            std::printf("uring_loop_test: defer_taskrun=%d: loop ended with: %s\n", defer,
                        r.error().message().c_str());
        } catch (const std::system_error& e) {
            std::printf("uring_loop_test: io_uring setup failed (%s); skipped\n", e.what());
        }
    }
    return unit::finish("uring_loop_test");
}
