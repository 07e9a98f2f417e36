/* SPDX-License-Identifier: GPL-2.0 */
/*
 * machvm's release version: the one number the module (MODULE_VERSION,
 * /sys/module/machvm/version), the DKMS package, the library's file name
 * and pkg-config file, the Debian packages and the tools (machvmctl status)
 * all carry.  The top-level Makefile reads it from this line; bump it here
 * only.  The ABI between them has its own number, MACHVM_ABI_VERSION in
 * the uapi header.
 */
#ifndef MACHVM_VERSION_H
#define MACHVM_VERSION_H

#define MACHVM_VERSION "0.1.0"

#endif
