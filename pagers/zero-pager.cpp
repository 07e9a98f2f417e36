// SPDX-License-Identifier: GPL-2.0
//
// zero-pager: the smallest useful pager.  Every page of its object is
// zero-filled by the kernel (data_unavailable): anonymous memory served
// through a user-level pager.
#include <cstdio>

#include <machvm/cli.hpp>
#include <machvm/serve.hpp>

namespace {

constexpr const char* kProg = "zero-pager";

const char kHead[] =
    "NAME\n"
    "       zero-pager - a machvm pager whose object reads as zeros\n"
    "\n"
    "SYNOPSIS\n"
    "       zero-pager [--size SIZE] [OPTIONS] --socket PATH [--exec CMD [ARG...]]\n"
    "       zero-pager [--size SIZE] [OPTIONS] --exec CMD [ARG...]\n"
    "\n"
    "DESCRIPTION\n"
    "       Creates one machvm memory object of SIZE bytes and serves it: the\n"
    "       first mapping's init is answered with ready, every data request with\n"
    "       data_unavailable, so the kernel zero-fills the pages.  Written pages\n"
    "       stay in the object (in the kernel) for as long as it lives.\n"
    "\n"
    "OPTIONS\n"
    "       --size SIZE\n"
    "              Object size in bytes; K, M, G, T suffixes (powers of 1024)\n"
    "              are accepted.  Rounded up to the page size.  Default 64M.\n";

const char kExitExtra[] = "";

const char kTail[] = "\n"
                     "EXAMPLES\n"
                     "       zero-pager --size 16M --socket /tmp/zero &\n"
                     "       machvm-map --socket /tmp/zero --verify zero\n"
                     "\n"
                     "       zero-pager --exec sh -c 'machvm-map --fd $MACHVM_FD --write byte:7'\n";

class ZeroPager final : public machvm::Pager {
  public:
    ZeroPager(const machvm_attr& attr, std::uint32_t ready_flags)
        : attr_(attr), ready_flags_(ready_flags) {}

    void on_init(const machvm_msg& msg, machvm::Reply& reply) noexcept override {
        // Returns (refused by the default handler) may be clusters.
        reply.ready(msg.object, attr_, ready_flags_);
    }
    void on_data_request(const machvm_msg& msg, machvm::Reply& reply) noexcept override {
        reply.data_unavailable(msg.object, msg.offset, msg.length);
    }

  private:
    machvm_attr attr_;
    std::uint32_t ready_flags_;
};

const machvm::PagerHelp kHelp{kHead, kExitExtra, kTail};

} // namespace

int main(int argc, char** argv) {
    try {
        machvm::PagerOptions opts;
        std::uint64_t size = 64ull << 20;
        auto own = [&](machvm::ArgReader& args) {
            if (auto v = args.value("--size")) {
                size = machvm::size_arg("--size", *v);
                return true;
            }
            return false;
        };
        if (!machvm::parse_pager_args(argc, argv, kHelp, opts, own))
            return machvm::kExitOk;

        machvm::PagerSetup setup = machvm::open_pager_setup();
        machvm::MemoryObject object = machvm::create_pager_object(setup, size, "--size", opts);
        ZeroPager pager(opts.attr, machvm::ready_flags(setup.version));
        return machvm::serve(kProg, setup, pager, std::move(object), opts);
    } catch (...) {
        return machvm::report_exception(kProg);
    }
}
