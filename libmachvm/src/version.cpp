// SPDX-License-Identifier: GPL-2.0
#include <machvm/version.hpp>

#include <fstream>

#include <machvm/device.hpp>

#ifndef MACHVM_RELEASE
#error "MACHVM_RELEASE: the Makefile passes kmod/version.h's MACHVM_VERSION"
#endif

namespace machvm {

const char* release() noexcept {
    return MACHVM_RELEASE;
}

std::string module_release() {
    std::ifstream in("/sys/module/machvm/version");
    std::string v;
    if (!in || !std::getline(in, v))
        return {};
    return v;
}

std::uint32_t module_abi() noexcept {
    auto dev = Device::open();
    if (!dev)
        return 0;
    auto v = dev->version();
    return v ? v->abi_version : 0;
}

std::string abi_mismatch(const char* prog, std::uint32_t abi) {
    if (abi == MACHVM_ABI_VERSION)
        return {};
    std::string mod = module_release();
    std::string msg = std::string(prog) + " (machvm " + release() + ", ABI " +
                      std::to_string(MACHVM_ABI_VERSION) + ") is " +
                      (abi < MACHVM_ABI_VERSION ? "newer" : "older") +
                      " than the loaded machvm module (" +
                      (mod.empty() ? std::string("release unknown") : "machvm " + mod) + ", ABI " +
                      std::to_string(abi) + ")";
    if (abi < MACHVM_ABI_VERSION)
        msg += ": load the module of release " + std::string(release()) +
               " (after installing it: sudo modprobe -r machvm && sudo modprobe machvm)";
    else
        msg += ": install the tools and library of the module's release";
    return msg;
}

} // namespace machvm
