// SPDX-License-Identifier: GPL-2.0
//
// A pager endpoint without the module: one end of an AF_UNIX socket pair
// (SOCK_SEQPACKET gives whole messages per read(2), as the device does),
// the other end for the test to play the kernel.
#pragma once

#include <sys/socket.h>

#include <machvm/device.hpp>

#include "check.hpp"

namespace unit {

struct SocketEndpoint {
    machvm::PagerEndpoint endpoint;
    machvm::Fd kernel;
};

inline SocketEndpoint socket_endpoint(int type = SOCK_SEQPACKET) {
    int sv[2] = {-1, -1};
    CHECK(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, sv) == 0);
    return {machvm::PagerEndpoint(machvm::Fd(sv[0])), machvm::Fd(sv[1])};
}

} // namespace unit
