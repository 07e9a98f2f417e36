/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * machvm: Mach-style memory objects and user-level pagers for Linux.
 *
 * This is the whole user-space ABI of the machvm module.  Every structure
 * has a fixed size and explicit padding; padding and reserved fields must
 * be zero on input and are zero on output.  No kernel types appear here.
 *
 * Handles and rights
 * ------------------
 *
 *  /dev/machvm        The device.  Opening it grants nothing; it answers
 *                     MACHVM_IOC_VERSION and MACHVM_IOC_REGION, creates
 *                     pager endpoints (MACHVM_IOC_PAGER_CREATE) and
 *                     anonymous objects (MACHVM_IOC_ANON_CREATE).
 *  pager endpoint     A file descriptor returned by MACHVM_IOC_PAGER_CREATE.
 *                     It is the pager's side of every object it creates:
 *                     only this endpoint can supply, fail, destroy or set
 *                     attributes on them.  Messages from the kernel are read
 *                     from it (read(2) or IORING_OP_URING_CMD), commands are
 *                     written to it (write(2) or IORING_OP_URING_CMD).
 *  object control id  A u64 (struct machvm_object_create.id) naming an
 *                     object inside its pager endpoint, like a Mach port
 *                     name in one task's name space.  It means nothing on
 *                     any other endpoint, and is not reused until some 2^31
 *                     more objects have been created on the endpoint, so a
 *                     late command never reaches a newer object.
 *  memory object      A file descriptor returned by MACHVM_IOC_OBJECT_CREATE
 *                     on the pager endpoint.  Holding it is the right to
 *                     mmap(2) the object.  It travels between processes the
 *                     Unix way (SCM_RIGHTS, fork).
 *  object name        A u64 never reused while the module is loaded.  Two
 *                     names are equal iff they name the same object.  A name
 *                     grants nothing; MACHVM_IOC_REGION returns it.
 *
 * Messages (kernel -> pager), struct machvm_msg
 * ---------------------------------------------
 *
 *  MACHVM_MSG_INIT             First mmap of the object.  object, name,
 *                              page_size.  The kernel does not wait: data
 *                              requests queue until the pager answers
 *                              MACHVM_CMD_READY.
 *  MACHVM_MSG_DATA_REQUEST     A fault needs [offset, offset + length),
 *                              page-aligned; access is the PROT_* wanted;
 *                              name is the object's.  Never sent twice for
 *                              a page while one is outstanding (a request
 *                              nobody answered in time is dropped and may
 *                              be sent again by a later fault).
 *  MACHVM_MSG_SUPPLY_COMPLETED Answer to a data_supply that asked for it
 *                              (MACHVM_SUPPLY_F_REPORT): length covers the
 *                              supply, count is the number of pages not
 *                              taken because they were already resident,
 *                              error is 0.
 *  MACHVM_MSG_TERMINATE        The last mapping and the last object right
 *                              are gone; the control id is dead.  Sent only
 *                              for an object that was mapped (had INIT),
 *                              never after DESTROY.
 *  MACHVM_MSG_DATA_RETURN      The kernel wants to free [offset, offset +
 *                              length) and gives the pages back: flags has
 *                              MACHVM_RETURN_F_DIRTY when they were written
 *                              since the pager supplied them, _PRECIOUS when
 *                              supplied precious, _FLUSH when a LOCK_REQUEST
 *                              asked for it.  The pager copies the data with
 *                              MACHVM_CMD_RETURN_COPY (as often as it likes)
 *                              and answers MACHVM_CMD_RETURN_DONE: error 0
 *                              takes the pages (the kernel frees those not
 *                              written meanwhile), non-zero refuses them (the
 *                              default pager keeps them, in swap).  No
 *                              answer within the object's timeout_ms counts
 *                              as a refusal; so does the pager's death.
 *                              Until then the pages stay resident and
 *                              mapped faults are served from them.
 *                              length is one page unless the pager said
 *                              MACHVM_READY_F_CLUSTER_RETURN: then pageout
 *                              returns contiguous pages of the object in
 *                              one message, as Mach's data_return carries
 *                              a range: [offset, offset + length), up to
 *                              MACHVM_RETURN_MAX_PAGES pages, every one
 *                              with the same flags (a range is split where
 *                              they differ) and the same seq.  Each page of
 *                              the range is answered on its own: a
 *                              RETURN_COPY or RETURN_DONE may cover the
 *                              whole range or any page-aligned part of it
 *                              (the pages it covers end; the rest stay
 *                              under the return until answered or timed
 *                              out).  Refusing the range (or any part)
 *                              gives those pages to the default pager; none
 *                              is lost.
 *  MACHVM_MSG_DATA_UNLOCK      A write to the write-locked resident page at
 *                              offset (length one page) wants access
 *                              (PROT_WRITE).  The writer waits as for a
 *                              DATA_REQUEST (killable; SIGBUS on timeout,
 *                              pager death, DATA_ERROR on the page) until a
 *                              LOCK_REQUEST with MACHVM_LOCK_F_LOCK removes
 *                              the lock or the page leaves memory.  Never
 *                              sent twice for a page while one is pending.
 *  MACHVM_MSG_LOCK_COMPLETED   Answer to MACHVM_CMD_LOCK_REQUEST: offset and
 *                              length of the request; every DATA_RETURN it
 *                              caused was queued before it.  count: pages
 *                              it should have returned but could not (the
 *                              queue was full, memory or swap-in failed):
 *                              they stay resident, the lock value applied.
 *  MACHVM_MSG_NOP              Delivered to an io_uring FETCH that waited
 *                              MACHVM_FETCH_IDLE_MS without work, so that a
 *                              closed ring never pins a command; re-arm it.
 *
 * Commands (pager -> kernel), struct machvm_cmd
 * ---------------------------------------------
 *
 *  MACHVM_CMD_READY            Attributes (attr) for the object and leave
 *                              the init state; queued requests are sent.
 *                              flags: MACHVM_READY_F_* (the pager's
 *                              abilities; the last READY or
 *                              CHANGE_ATTRIBUTES sets them).
 *  MACHVM_CMD_DATA_SUPPLY      length bytes at offset from the buffer at
 *                              addr.  May cover more than was asked and may
 *                              be unsolicited.  flags: MACHVM_SUPPLY_F_*.
 *                              Resident pages are left as they are (not
 *                              taken) unless MACHVM_SUPPLY_F_OVERWRITE.
 *  MACHVM_CMD_DATA_UNAVAILABLE Zero-fill [offset, offset + length).
 *  MACHVM_CMD_DATA_ERROR       Every fault waiting on these pages gets
 *                              SIGBUS; error is a positive errno (report).
 *  MACHVM_CMD_CHANGE_ATTRIBUTES Same as READY without the state change
 *                              (attr's zeroes: see struct machvm_attr).
 *  MACHVM_CMD_DESTROY          Destroy the object: mappings lose their
 *                              pages, every later fault gets SIGBUS, the
 *                              control id dies (no TERMINATE follows).
 *                              Takes object only: any other field set is
 *                              -EINVAL and the object lives on, served.
 *  MACHVM_CMD_RETURN_COPY      Copy the pages of [offset, offset + length),
 *                              all under the DATA_RETURN whose seq is in
 *                              seq, to the buffer at addr (-ENOENT if one
 *                              is not being returned, -ESTALE if it is
 *                              under a newer one: checked for every page
 *                              before any is copied; only a return ended
 *                              meanwhile stops a copy part-way).
 *  MACHVM_CMD_RETURN_DONE      End the DATA_RETURN (seq in seq) of [offset,
 *                              offset + length): error 0 takes the pages, a
 *                              positive errno refuses them.  Pages not
 *                              under that DATA_RETURN are skipped (a late
 *                              answer never ends a newer return).
 *  MACHVM_CMD_LOCK_REQUEST     Mach's memory_object_lock_request on [offset,
 *                              offset + length): flags holds should_return
 *                              (MACHVM_LOCK_RETURN_NONE / _DIRTY / _ALL: which
 *                              resident pages and which pages the default
 *                              pager holds in swap are sent back with
 *                              DATA_RETURN) and MACHVM_LOCK_F_FLUSH (drop the
 *                              pages from memory: once returned, or at once
 *                              when not returned, discarding changes), and
 *                              with MACHVM_LOCK_F_LOCK sets the lock value
 *                              (lock: 0 or PROT_WRITE) of the resident pages
 *                              left: write-locking write-protects them in
 *                              every mapping at once; unlocking wakes the
 *                              writers waiting on DATA_UNLOCK.  A page still
 *                              under an earlier DATA_RETURN is sent again
 *                              (as dirty, new seq) when should_return is not
 *                              NONE: the earlier one ends unanswered, its
 *                              late RETURN_COPY gets -ESTALE and its
 *                              RETURN_DONE is skipped.  A write racing a
 *                              request that write-locks and returns dirty
 *                              pages is either in what it returns or asks
 *                              with DATA_UNLOCK afterwards: at
 *                              LOCK_COMPLETED the pager has every write.
 *                              Answered by MACHVM_MSG_LOCK_COMPLETED.
 *
 * Locks (Mach's lock values) apply to resident pages: a page supplied with
 * lock PROT_WRITE is mapped read-only until unlocked; a page that leaves
 * memory leaves its lock behind (the pager supplies it again with the lock
 * it wants).  MAP_PRIVATE writes copy the page and need no unlock.
 *
 * Every command is checked whole before it acts: unknown type or flags, a
 * field the command does not take (see struct machvm_cmd) that is not
 * zero, a value out of its range, unaligned or out-of-range offset/length
 * (-EINVAL), a control id unknown to this endpoint (-ENOENT), a buffer
 * outside the address space (-EFAULT): each is an errno and changes
 * nothing, the control id included.  A DATA_SUPPLY whose
 * buffer faults part-way (-EFAULT) or that runs out of memory (-ENOMEM)
 * keeps the pages it installed before the failure; supplying them again is
 * harmless (they are reported as not taken).  MACHVM_SUPPLY_F_REPORT is
 * refused with -ENOBUFS while the endpoint's queue holds 65536 unread
 * messages.
 *
 * Faults: a fault that may drop mmap_lock waits for the pager, for at
 * most the object's timeout_ms, and sleeps meanwhile.  A user-mode access
 * waits interruptibly: a signal handler runs, then the access waits on
 * for the same request and deadline (SIGBUS at the deadline, however many
 * signals came).  An access from the kernel (read(2)/write(2) buffers,
 * vmsplice(2), io_uring) waits killably, not interrupted by other
 * signals, and fails with EFAULT (or a short count) at the deadline.  A
 * fault that may not drop mmap_lock (ptrace, /proc/pid/mem, core dumps)
 * never sleeps on a pager: it gets SIGBUS at once and the request stays
 * queued, as with userfaultfd.
 * At most 4096 requests are outstanding per object; faults beyond that
 * get SIGBUS.
 *
 * Pageout: resident pages beyond the global or an object's resident limit
 * are paged out by the kernel (FIFO, second chance): clean pages a pager
 * or a swap slot has are dropped; written (dirty) and precious pages of a
 * live pager go back to it with DATA_RETURN; the rest, and whatever a
 * pager refuses, does not answer for within timeout_ms, or leaves behind
 * when it dies, go to swap (the default pager) and fault back in from
 * there without a DATA_REQUEST.  A fault that needs room waits (killable)
 * for pageout; when nothing can be paged out (every swap store full) it
 * gets SIGBUS.  When an object's last mapping and right go, its written
 * pages are returned before TERMINATE is sent.
 *
 * mlock: as Linux never pages out a page of a VM_LOCKED range, pageout
 * (the daemon, resident limits, the shrinker, a memcg's reclaim, RUN_PAGEOUT
 * even with force) never takes a resident page inside a range locked by
 * mlock(2), mlock2(2) (MLOCK_ONFAULT too: a page counts once resident),
 * mlockall(2) MCL_CURRENT or MCL_FUTURE, or mmap MAP_LOCKED, and leaves it
 * mapped (no soft fault on it).  munlock/munlockall/munmap release it.
 * The pager's own requests win, as truncation does over mlock for a file
 * page: LOCK_REQUEST with MACHVM_LOCK_F_FLUSH, an overwriting DATA_SUPPLY
 * and DESTROY take or change locked pages too (a flushed page faults back
 * in on the next touch, from the pager); a LOCK_REQUEST that returns
 * without flush leaves them resident.
 *
 * read(2) on an endpoint returns whole messages (at least 64 bytes must
 * fit; -EINVAL otherwise), blocks unless O_NONBLOCK (-EAGAIN), and poll(2)
 * reports POLLIN when one is queued.  write(2) takes whole commands,
 * executes them in order and returns the bytes of those done; if the first
 * fails it returns -1 with its errno.  Messages read into a faulting buffer
 * are lost (-EFAULT); the faults behind them time out.
 *
 * io_uring transport
 * ------------------
 *
 * IORING_OP_URING_CMD on the pager endpoint, 64-byte SQEs; the 16-byte
 * command area holds struct machvm_uring_cmd.
 *
 *  MACHVM_URING_FETCH            Wait for one message; the kernel copies it
 *                                to msg (in the pager's own task) and
 *                                completes with res 0.
 *  MACHVM_URING_COMMIT_AND_FETCH Execute the command at reply first (in the
 *                                submitting task; data is copied from there)
 *                                then wait as FETCH.  If the command fails
 *                                the CQE carries its -errno at once and
 *                                nothing waits; every other check (msg,
 *                                memory) is made before the command runs,
 *                                so an error CQE means it did not run (but
 *                                see the partial DATA_SUPPLY above).
 *
 * Message order.  Messages leave the queue in order of their seq, and
 * each goes to one FETCH.  On one ring, a message is never reaped before a
 * message given to that ring earlier, except within the same batch of
 * completions (the CQEs one io_uring_enter(2) wait leaves in the CQ ring),
 * where they may come in any order: a pager that depends on the order (a
 * DATA_RETURN before the LOCK_COMPLETED of the LOCK_REQUEST that caused
 * it) sorts each batch by seq and may keep many FETCHes in flight.  The
 * one exception is a message whose slot died (-ECANCELED below): it is
 * given again, first in line, keeping its seq.  Rings of one endpoint
 * (pager threads) get disjoint subsets of the messages; their order across
 * rings is the pager's own business, seq tells it.  read(2) returns
 * messages in seq order.
 *
 * msg must be 8-byte aligned and writable (-EFAULT).  Unknown cmd_op:
 * -EOPNOTSUPP; IOPOLL rings: -EOPNOTSUPP.  A command never fails with
 * -ECANCELED except when its slot is dead (see below).
 *
 * A FETCH completing with -ECANCELED is a dead slot: its submitting task is
 * exiting or its ring is being torn down (io_uring itself also uses
 * -ECANCELED for broken links).  A message that slot had been given goes
 * back to the queue.  One that waited
 * MACHVM_FETCH_IDLE_MS completes with a MACHVM_MSG_NOP message: re-arm it.
 */
#ifndef _UAPI_LINUX_MACHVM_H
#define _UAPI_LINUX_MACHVM_H

#include <linux/types.h>
#include <linux/ioctl.h>

#define MACHVM_DEVICE		"/dev/machvm"
/*
 * The ABI's version: a module and a program of different versions do not
 * understand each other (libmachvm refuses to run then).  MACHVM_IOC_VERSION
 * and struct machvm_version never change, so the question can always be
 * asked.  2: _IOWR-encoded io_uring cmd_op values, one netlink attribute
 * enum per nest, the header at <linux/machvm.h>.
 */
#define MACHVM_ABI_VERSION	2

/* Feature bits reported by MACHVM_IOC_VERSION. */
#define MACHVM_F_OBJECTS	(1ULL << 0)	/* objects, faults, read/write */
#define MACHVM_F_URING_CMD	(1ULL << 1)	/* io_uring transport */
#define MACHVM_F_REGION		(1ULL << 2)	/* MACHVM_IOC_REGION */
#define MACHVM_F_PAGEOUT	(1ULL << 3)	/* pageout daemon, data_return,
						 * lock_request, default pager
						 */
#define MACHVM_F_ANON		(1ULL << 4)	/* MACHVM_IOC_ANON_CREATE */
#define MACHVM_F_LOCKS		(1ULL << 5)	/* write locks, data_unlock */
#define MACHVM_F_CLUSTER_RETURN	(1ULL << 6)	/* MACHVM_READY_F_CLUSTER_RETURN */
#define MACHVM_F_FETCH_RELEASE	(1ULL << 7)	/* MACHVM_IOC_FETCH_RELEASE */
#define MACHVM_F_EXISTENCE	(1ULL << 8)	/* MACHVM_READY_F_EXISTENCE */
#define MACHVM_F_TEMPORARY	(1ULL << 9)	/* MACHVM_READY_F_TEMPORARY */

/**
 * struct machvm_version - MACHVM_IOC_VERSION (out; 64 bytes)
 * @abi_version: MACHVM_ABI_VERSION of the running module.
 * @page_size:   the kernel's page size; offsets are multiples of it.
 * @features:    MACHVM_F_* the module implements.
 * @max_object_size: largest object size accepted, in bytes.
 * @reserved:    zero.
 */
struct machvm_version {
	__u32 abi_version;
	__u32 page_size;
	__u64 features;
	__u64 max_object_size;
	__u64 reserved[5];
};

/**
 * struct machvm_pager_create - MACHVM_IOC_PAGER_CREATE (in/out; 32 bytes)
 * @flags:    zero.
 * @fd:       out: the pager endpoint file descriptor (O_CLOEXEC); zero on
 *            input.
 * @reserved: zero.
 */
struct machvm_pager_create {
	__u32 flags;
	__s32 fd;
	__u64 reserved[3];
};

/* Copy strategies (Mach's memory_object_copy_strategy_t). */
#define MACHVM_COPY_NONE	0
#define MACHVM_COPY_CALL	1
#define MACHVM_COPY_DELAY	2

/**
 * struct machvm_attr - object attributes (Mach's memory_object_attr_info;
 * 8 bytes)
 * @may_cache:     1 if pages may stay resident after the last unmap.
 *                 Recorded and reported; nothing acts on it yet (objects
 *                 die with their last mapping and right).
 * @copy_strategy: MACHVM_COPY_*.  Recorded and reported; MAP_PRIVATE
 *                 copies are always the kernel's copy-on-write.
 * @cluster_pages: pages per data_request, a power of two, 1 to 64; 0 keeps
 *                 the current value (MACHVM_DEFAULT_CLUSTER_PAGES at
 *                 OBJECT_CREATE).  A read fault also maps the pages of its
 *                 cluster that are in memory (within one page table).
 * @timeout_ms:    how long a fault waits for the pager, 10 ms to 600 s; 0
 *                 keeps the current value (MACHVM_DEFAULT_TIMEOUT_MS at
 *                 OBJECT_CREATE).
 *
 * READY and CHANGE_ATTRIBUTES set may_cache and copy_strategy always, and
 * cluster_pages and timeout_ms unless 0.  Any other value (3, 65, 5 ms,
 * may_cache 2, ...) is -EINVAL and changes nothing.
 */
struct machvm_attr {
	__u8 may_cache;
	__u8 copy_strategy;
	__u16 cluster_pages;
	__u32 timeout_ms;
};

#define MACHVM_DEFAULT_TIMEOUT_MS	5000
#define MACHVM_DEFAULT_CLUSTER_PAGES	1
#define MACHVM_MAX_CLUSTER_PAGES	64
#define MACHVM_FETCH_IDLE_MS		2000

/**
 * struct machvm_object_create - MACHVM_IOC_OBJECT_CREATE on an endpoint
 * (64 bytes)
 * @size:     in: object size in bytes, a non-zero multiple of page_size.
 * @max_prot: in: PROT_READ, PROT_WRITE, PROT_EXEC mask no mapping exceeds.
 * @flags:    in: zero.
 * @attr:     in: initial attributes (cluster_pages 0, timeout_ms 0: the
 *            defaults MACHVM_DEFAULT_CLUSTER_PAGES, _TIMEOUT_MS).
 * @id:       out: the object control id on this endpoint.
 * @name:     out: the object name.
 * @fd:       out: the memory object file descriptor (O_CLOEXEC).
 * @id, @name and @fd must be zero on input.
 * @pad:      zero.
 * @reserved: zero.
 */
struct machvm_object_create {
	__u64 size;
	__u32 max_prot;
	__u32 flags;
	struct machvm_attr attr;
	__u64 id;
	__u64 name;
	__s32 fd;
	__u32 pad;
	__u64 reserved[2];
};

/**
 * struct machvm_region - MACHVM_IOC_REGION (Mach's vm_region; 80 bytes)
 * @addr:     in: an address in the caller's address space.
 * @start:    out: first address of the mapping holding it.
 * @end:      out: end (exclusive) of that mapping.
 * @name:     out: name of the object mapped there.
 * @offset:   out: object offset that @addr maps.
 * @size:     out: object size.
 * @prot:     out: current PROT_* of the mapping.
 * @max_prot: out: PROT_* the mapping may be raised to.
 * @shared:   out: 1 for MAP_SHARED, 0 for MAP_PRIVATE.
 * @pad:      zero.
 * @reserved: zero.
 *
 * -ENOMEM: no mapping at @addr.  -ENXIO: the mapping is not a machvm object.
 */
struct machvm_region {
	__u64 addr;
	__u64 start;
	__u64 end;
	__u64 name;
	__u64 offset;
	__u64 size;
	__u32 prot;
	__u32 max_prot;
	__u32 shared;
	__u32 pad;
	__u64 reserved[2];
};

/**
 * struct machvm_anon_create - MACHVM_IOC_ANON_CREATE on /dev/machvm (56 bytes)
 * (Mach's vm_allocate: an object with no user pager, zero-filled on first
 * touch, paged by the default pager)
 * @size:           in: bytes, a non-zero multiple of page_size.
 * @resident_limit: in: most pages of this object kept resident (0: the
 *                  default object limit, see GET_PAGEOUT; more than the
 *                  object's pages is clamped); pages beyond go to swap.
 * @flags:          in: zero.
 * @fd:             out: the memory object file descriptor (O_CLOEXEC).
 * @name:           out: the object name.
 * @reserved:       zero.
 * @fd and @name must be zero on input.  The object lives while a mapping
 * or a descriptor does; its swap slots are freed with it.
 */
struct machvm_anon_create {
	__u64 size;
	__u64 resident_limit;
	__u32 flags;
	__s32 fd;
	__u64 name;
	__u64 reserved[3];
};

/* Message types (kernel -> pager). */
#define MACHVM_MSG_NOP			0
#define MACHVM_MSG_INIT			1
#define MACHVM_MSG_DATA_REQUEST		2
#define MACHVM_MSG_SUPPLY_COMPLETED	3
#define MACHVM_MSG_TERMINATE		4
#define MACHVM_MSG_DATA_RETURN		5
#define MACHVM_MSG_LOCK_COMPLETED	6
#define MACHVM_MSG_DATA_UNLOCK		7

/* DATA_RETURN flags (struct machvm_msg.flags). */
#define MACHVM_RETURN_F_DIRTY		(1U << 0)	/* written since supplied */
#define MACHVM_RETURN_F_PRECIOUS	(1U << 1)	/* supplied precious */
#define MACHVM_RETURN_F_FLUSH		(1U << 2)	/* lock_request flush */

/**
 * struct machvm_msg - one message from the kernel to a pager (64 bytes)
 * @type:      MACHVM_MSG_*.
 * @access:    DATA_REQUEST: PROT_* the fault needs.
 * @object:    the object control id.
 * @offset:    DATA_REQUEST, SUPPLY_COMPLETED, DATA_RETURN, LOCK_COMPLETED:
 *             byte offset, page aligned.
 * @length:    DATA_REQUEST, SUPPLY_COMPLETED, LOCK_COMPLETED: bytes, page
 *             multiple.  DATA_RETURN: one page, or up to
 *             MACHVM_RETURN_MAX_PAGES contiguous pages when the pager said
 *             MACHVM_READY_F_CLUSTER_RETURN.
 * @name:      INIT: the object name.
 * @size:      INIT: object size in bytes.
 * @page_size: INIT: page size.
 * @count:     SUPPLY_COMPLETED: pages not taken (already resident);
 *             LOCK_COMPLETED: pages not returned (see above).
 * @flags:     DATA_RETURN: MACHVM_RETURN_F_* (shares @count's place),
 *             the same for every page of the range.
 * @seq:       per-endpoint sequence number, from 1, increasing in the
 *             order messages were queued (NOP: 0).  Numbers of messages
 *             that became moot before any pager took them (a request the
 *             fault no longer waits for) are skipped.  See "Message order"
 *             for how to restore the queue order with many FETCHes in
 *             flight.  DATA_RETURN: the value RETURN_COPY and RETURN_DONE
 *             quote in their @seq; every page of the range is under this
 *             one seq.
 *
 * DATA_RETURN and LOCK_COMPLETED fill object, offset, length and name.
 */
struct machvm_msg {
	__u32 type;
	__u32 access;
	__u64 object;
	__u64 offset;
	__u64 length;
	__u64 name;
	__u64 size;
	__u32 page_size;
	union {
		__u32 count;
		__u32 flags;
	};
	__u64 seq;
};

/* Command types (pager -> kernel). */
#define MACHVM_CMD_READY		1
#define MACHVM_CMD_DATA_SUPPLY		2
#define MACHVM_CMD_DATA_UNAVAILABLE	3
#define MACHVM_CMD_DATA_ERROR		4
#define MACHVM_CMD_CHANGE_ATTRIBUTES	5
#define MACHVM_CMD_DESTROY		6
#define MACHVM_CMD_RETURN_COPY		7
#define MACHVM_CMD_RETURN_DONE		8
#define MACHVM_CMD_LOCK_REQUEST		9

/*
 * READY and CHANGE_ATTRIBUTES flags (struct machvm_cmd.flags), where the
 * module has MACHVM_F_CLUSTER_RETURN: the pager handles a DATA_RETURN of
 * several pages (length above one page).  Without it every DATA_RETURN
 * is one page, as before.
 */
#define MACHVM_READY_F_CLUSTER_RETURN	(1U << 0)
/*
 * Where the module has MACHVM_F_EXISTENCE: the pager holds no page it did
 * not get from the kernel.  The module keeps, from the object's creation,
 * a map of the pages the pager has (Mach's existence map): those it
 * supplied with DATA_SUPPLY, and those whose DATA_RETURN it took
 * (RETURN_DONE, error 0).  With this flag, a fault on any other page that
 * is not resident or in swap is zero-filled by the kernel at once, with no
 * DATA_REQUEST: a store that starts empty (a compressed-memory pager, a
 * fresh namespace in a key-value store) is asked only for what it holds.
 * A pager with data of its own (a file) must not set it.  The last READY
 * or CHANGE_ATTRIBUTES sets or clears it.  A copy the pager keeps that
 * the map does not know of is never asked for: one taken with RETURN_COPY
 * whose RETURN_DONE refused or came too late (the default pager holds the
 * page then; a LOCK_REQUEST flush that discards its copy leaves zeroes).
 * An unsolicited DATA_SUPPLY of a page already zero-filled here is not
 * taken (SUPPLY_COMPLETED's count), but the map notes it: once the page
 * leaves memory, the pager is asked for it.
 */
#define MACHVM_READY_F_EXISTENCE	(1U << 1)
/*
 * Where the module has MACHVM_F_TEMPORARY: the object is temporary, as
 * Mach's temporary objects are: when its last mapping and right are gone,
 * its pages are dropped, not returned (no DATA_RETURN at termination; the
 * ones already under way end as usual), and TERMINATE follows at once.
 * For a pager that forgets an object's pages at TERMINATE anyway (a
 * process's heap in a store); never for one that keeps them (a file).
 * The last READY or CHANGE_ATTRIBUTES sets or clears it.
 */
#define MACHVM_READY_F_TEMPORARY	(1U << 2)
#define MACHVM_READY_F_ALL		(MACHVM_READY_F_CLUSTER_RETURN | \
					 MACHVM_READY_F_EXISTENCE | \
					 MACHVM_READY_F_TEMPORARY)
/* Most pages one DATA_RETURN carries. */
#define MACHVM_RETURN_MAX_PAGES		32

/* DATA_SUPPLY flags. */
#define MACHVM_SUPPLY_F_REPORT		(1U << 0) /* send SUPPLY_COMPLETED */
#define MACHVM_SUPPLY_F_PRECIOUS	(1U << 1) /* return even when clean */
/*
 * Pages already resident are overwritten with the data (unmapped first,
 * clean afterwards, their swap copy forgotten, the supply's lock value
 * applied) instead of left as they are: for a pager whose copy is newer
 * than whatever the kernel kept, such as a coherence protocol's (part of
 * MACHVM_F_LOCKS).
 */
#define MACHVM_SUPPLY_F_OVERWRITE	(1U << 2)
#define MACHVM_SUPPLY_F_ALL		(MACHVM_SUPPLY_F_REPORT | \
					 MACHVM_SUPPLY_F_PRECIOUS | \
					 MACHVM_SUPPLY_F_OVERWRITE)

/* LOCK_REQUEST flags: should_return in the low two bits, then FLUSH. */
#define MACHVM_LOCK_RETURN_NONE		0
#define MACHVM_LOCK_RETURN_DIRTY	1
#define MACHVM_LOCK_RETURN_ALL		2
#define MACHVM_LOCK_RETURN_MASK		3
#define MACHVM_LOCK_F_FLUSH		(1U << 2)
#define MACHVM_LOCK_F_LOCK		(1U << 3)	/* apply cmd.lock */
#define MACHVM_LOCK_F_ALL		(MACHVM_LOCK_RETURN_MASK | \
					 MACHVM_LOCK_F_FLUSH | MACHVM_LOCK_F_LOCK)

/* Most bytes one DATA_SUPPLY / UNAVAILABLE / ERROR may cover. */
#define MACHVM_MAX_XFER			(4U << 20)

/**
 * struct machvm_cmd - one command from a pager to the kernel (64 bytes)
 * @type:     MACHVM_CMD_*.
 * @flags:    DATA_SUPPLY: MACHVM_SUPPLY_F_*; LOCK_REQUEST: should_return
 *            and MACHVM_LOCK_F_*; READY, CHANGE_ATTRIBUTES:
 *            MACHVM_READY_F_*; otherwise zero.
 * @object:   the object control id on this endpoint.
 * @offset:   byte offset, page aligned.
 * @length:   bytes, a page multiple, at most MACHVM_MAX_XFER.
 *            RETURN_COPY, RETURN_DONE: the DATA_RETURN's range or any
 *            page-aligned part of it.
 * @addr:     DATA_SUPPLY: user address of @length bytes of data;
 *            RETURN_COPY: user address @length bytes are copied to.
 * @error:    DATA_ERROR: positive errno, 1..4095; RETURN_DONE: 0 (taken)
 *            or a positive errno (refused).
 * @lock:     DATA_SUPPLY, LOCK_REQUEST with MACHVM_LOCK_F_LOCK: accesses
 *            prohibited (0 or PROT_WRITE); zero otherwise.
 * @attr:     READY, CHANGE_ATTRIBUTES: the attributes; zero otherwise.
 * @seq:      RETURN_COPY, RETURN_DONE: the seq of the DATA_RETURN message
 *            answered (a page under a newer DATA_RETURN is skipped by
 *            RETURN_DONE, -ESTALE for RETURN_COPY); zero otherwise.
 */
struct machvm_cmd {
	__u32 type;
	__u32 flags;
	__u64 object;
	__u64 offset;
	__u64 length;
	__u64 addr;
	__u32 error;
	__u32 lock;
	struct machvm_attr attr;
	__u64 seq;
};

/**
 * struct machvm_uring_cmd - the 16-byte sqe->cmd area
 * @reply: COMMIT_AND_FETCH: user address of a struct machvm_cmd; else 0.
 * @msg:   user address of a struct machvm_msg the next message goes to.
 */
struct machvm_uring_cmd {
	__u64 reply;
	__u64 msg;
};

#define MACHVM_IOC_MAGIC	'M'

/*
 * io_uring command opcodes (sqe->cmd_op), encoded as ioctl numbers (as
 * ublk's UBLK_U_IO_*): direction, size of struct machvm_uring_cmd, magic
 * and number.  The module accepts exactly these values; any other cmd_op,
 * including ABI 1's raw 0x4d01 and 0x4d02 or a number with another size,
 * completes with -EOPNOTSUPP.
 */
#define MACHVM_URING_FETCH \
	_IOWR(MACHVM_IOC_MAGIC, 0x20, struct machvm_uring_cmd)
#define MACHVM_URING_COMMIT_AND_FETCH \
	_IOWR(MACHVM_IOC_MAGIC, 0x21, struct machvm_uring_cmd)
#define MACHVM_IOC_VERSION	_IOR(MACHVM_IOC_MAGIC, 0x00, struct machvm_version)
#define MACHVM_IOC_PAGER_CREATE	_IOWR(MACHVM_IOC_MAGIC, 0x01, struct machvm_pager_create)
#define MACHVM_IOC_REGION	_IOWR(MACHVM_IOC_MAGIC, 0x02, struct machvm_region)
#define MACHVM_IOC_ANON_CREATE	_IOWR(MACHVM_IOC_MAGIC, 0x03, struct machvm_anon_create)
/* On a pager endpoint only. */
#define MACHVM_IOC_OBJECT_CREATE _IOWR(MACHVM_IOC_MAGIC, 0x10, struct machvm_object_create)
/*
 * MACHVM_IOC_FETCH_RELEASE (no argument; MACHVM_F_FETCH_RELEASE): every
 * io_uring FETCH idle on this endpoint (given no message yet) completes
 * now with a MACHVM_MSG_NOP message, as it would after
 * MACHVM_FETCH_IDLE_MS.  A pager that stops calls it once it arms no
 * more FETCHes, so that its rings drain at once instead of within that
 * period.  Returns how many it released (0 or more).  Like the periodic
 * check, it also completes the FETCHes of exiting tasks (-ECANCELED);
 * nothing else changes.
 */
#define MACHVM_IOC_FETCH_RELEASE _IO(MACHVM_IOC_MAGIC, 0x11)

/*
 * Generic netlink family MACHVM_GENL_NAME, version MACHVM_GENL_VERSION:
 * inspection and administration (machvmctl).  Reads are open to everyone;
 * commands that change anything need CAP_SYS_ADMIN (-EPERM otherwise).
 * A request is checked whole before it acts: an attribute the command
 * does not take (below), of the wrong size or unknown is -EINVAL, and a
 * refused request changes nothing.
 * Objects are named by their object name (MACHVM_A_OBJ_NAME), which is
 * unique while the module is loaded.
 *
 * MACHVM_GENL_CMD_GET_STATUS (doit)
 *   reply: MACHVM_A_ABI_VERSION u32, MACHVM_A_PAGE_SIZE u32,
 *          MACHVM_A_FEATURES u64, MACHVM_A_NR_OBJECTS u32,
 *          MACHVM_A_NR_PAGERS u32
 *
 * MACHVM_GENL_CMD_GET_OBJECT (dumpit: every object, one genl message
 *   each, continued across reads in name order; doit: the one named by
 *   MACHVM_A_OBJ_NAME, -ENOENT if none).  A destroyed object stays listed
 *   (state DESTROYED) until its last mapping and descriptor are gone.
 *   each object: MACHVM_A_OBJECT nest of
 *     MACHVM_OBJ_A_NAME u64       object name
 *     MACHVM_OBJ_A_ID u64         control id on its pager endpoint
 *     MACHVM_OBJ_A_SIZE u64       bytes
 *     MACHVM_OBJ_A_MAX_PROT u32   PROT_* bits
 *     MACHVM_OBJ_A_STATE u32      MACHVM_OBJ_STATE_*
 *     MACHVM_OBJ_A_RESIDENT u64   resident pages
 *     MACHVM_OBJ_A_MAPPINGS u32   live mappings (VMAs) of the object
 *     MACHVM_OBJ_A_PAGER_PID u32  thread-group id that created the pager
 *     MACHVM_OBJ_A_PAGER_STATE u32 MACHVM_PAGER_STATE_*
 *     MACHVM_OBJ_A_PENDING u32    outstanding data requests
 *     MACHVM_OBJ_A_MAY_CACHE u8, MACHVM_OBJ_A_COPY u8,
 *     MACHVM_OBJ_A_CLUSTER u32, MACHVM_OBJ_A_TIMEOUT_MS u32  attributes
 *     MACHVM_OBJ_A_FAULTS u64, MACHVM_OBJ_A_REQUESTS u64,
 *     MACHVM_OBJ_A_SUPPLIED u64, MACHVM_OBJ_A_ERRORS u64,
 *     MACHVM_OBJ_A_TIMEOUTS u64   per-object counters (pages / events)
 *     MACHVM_OBJ_A_KIND u32       MACHVM_OBJ_KIND_*
 *     MACHVM_OBJ_A_DIRTY u64      resident pages known written (dirty bits
 *                                 are gathered when pages are unmapped)
 *     MACHVM_OBJ_A_SWAPPED u64    pages with a swap slot
 *     MACHVM_OBJ_A_LIMIT u64      resident limit in pages, 0: none
 *     MACHVM_OBJ_A_PAGEOUTS u64, MACHVM_OBJ_A_PAGEINS u64,
 *     MACHVM_OBJ_A_RETURNED u64, MACHVM_OBJ_A_DEFAULT_TAKEN u64,
 *     MACHVM_OBJ_A_SCANS u64, MACHVM_OBJ_A_REF_HITS u64
 *                                 pageout counters, as MACHVM_A_STAT_*
 *   Anonymous objects have no pager: PAGER_PID 0, PAGER_STATE NONE.
 *
 * MACHVM_GENL_CMD_GET_STATS (doit)
 *   reply: MACHVM_A_STATS nest of u64 counters, MACHVM_A_STAT_*
 *
 * MACHVM_GENL_CMD_DESTROY_OBJECT (doit, CAP_SYS_ADMIN)
 *   request: MACHVM_A_OBJ_NAME.  Same effect as the pager's DESTROY:
 *   mappings lose their pages, later faults get SIGBUS, the control id
 *   dies.  -ENOENT if no such live object (of two racing destroys, the
 *   pager's or the admin's, one wins and the other gets -ENOENT).
 *
 * MACHVM_GENL_CMD_GET_PAGEOUT (doit)
 *   reply: the tunables MACHVM_A_PO_LIMIT u64 (global resident limit,
 *          pages), MACHVM_A_PO_HIGH u32 and MACHVM_A_PO_LOW u32 (watermarks,
 *          percent of the limit: pageout starts above high and stops at
 *          low), MACHVM_A_PO_OBJ_LIMIT u64 (default resident limit of new
 *          objects, pages, 0: none), MACHVM_A_PO_BATCH u32 (pages scanned
 *          per step), MACHVM_A_PO_INTERVAL_MS u32 (period of the idle scan);
 *          and the state MACHVM_A_PO_RESIDENT u64 (resident pages),
 *          MACHVM_A_PO_RETURNING u64 (pages under DATA_RETURN),
 *          MACHVM_A_PO_STUCK u8 (1: over the limit and nothing can go).
 *
 * MACHVM_GENL_CMD_SET_PAGEOUT (doit, CAP_SYS_ADMIN)
 *   request: any of the tunables above; and/or MACHVM_A_OBJ_NAME with
 *   MACHVM_A_OBJ_LIMIT to set one object's limit (at most its size in
 *   pages: larger values are clamped).  All are checked before any is
 *   applied: LIMIT 16..2^40, OBJ_LIMIT <= 2^40, 1 <= LOW < HIGH <= 100
 *   (the new values with the current ones of the watermark not given),
 *   BATCH 1..65536, INTERVAL_MS 10..60000 (-EINVAL, -ENOENT for an unknown
 *   object, with an extack message); on any error nothing is applied.
 *   Concurrent requests apply one after the other.
 *   reply: as GET_PAGEOUT.
 *
 * MACHVM_GENL_CMD_RUN_PAGEOUT (doit, CAP_SYS_ADMIN)
 *   request: optional MACHVM_A_PO_TARGET u64 (pages to free; default:
 *   down to the low watermark, at least one batch), optional
 *   MACHVM_A_OBJ_NAME (only that object's pages).  One FIFO pass, run now
 *   in the caller; second chance still applies unless MACHVM_A_PO_FORCE u8
 *   is 1.  Pages handed to a pager are freed when it answers.
 *   reply: MACHVM_A_PO_SCANNED u64, MACHVM_A_PO_FREED u64,
 *          MACHVM_A_PO_RETURNING u64 (sent to pagers by this pass).
 *
 * MACHVM_GENL_CMD_SWAP_ADD (doit, CAP_SYS_ADMIN)
 *   request: MACHVM_A_SWAP_PATH string (a regular file, created if
 *   missing, or a block device), MACHVM_A_SWAP_SIZE u64 (bytes; a file is
 *   allocated to this size up front, 0: its current size; a device: 0 or
 *   at most its size), MACHVM_A_SWAP_PRIO s32 (higher is used first;
 *   default 0).  -EBUSY if the path (or the same file by another path)
 *   is already a store or the device is in use, -ENOSPC if it has fewer
 *   than 16 pages, -EINVAL for more than 2^33 pages or anything else that
 *   is not a store.
 *   reply: MACHVM_A_SWAP nest of the new store, as in GET_SWAP.
 *
 * MACHVM_GENL_CMD_SWAP_REMOVE (doit, CAP_SYS_ADMIN)
 *   request: MACHVM_A_SWAP_ID u32.  Reads every page the store holds back
 *   into memory first (they go to other stores later); -ENOMEM, changing
 *   nothing, when they do not fit in the system's available memory (or
 *   memory ran out on the way: the store then stays); -EBUSY if a slot is
 *   still in use afterwards; -ENOENT: no such store.
 *
 * MACHVM_GENL_CMD_GET_SWAP (dumpit: every store; doit: MACHVM_A_SWAP_ID)
 *   each store: MACHVM_A_SWAP nest of
 *     MACHVM_SWAP_A_ID u32, MACHVM_SWAP_A_PATH string,
 *     MACHVM_SWAP_A_KIND u32 (MACHVM_SWAP_KIND_*), MACHVM_SWAP_A_PRIO s32,
 *     MACHVM_SWAP_A_SLOTS u64 (pages), MACHVM_SWAP_A_USED u64 (pages),
 *     MACHVM_SWAP_A_WRITES u64, MACHVM_SWAP_A_READS u64 (pages),
 *     MACHVM_SWAP_A_DIRECT u8 (1: O_DIRECT I/O)
 *
 * Multicast group MACHVM_GENL_MCGRP_EVENTS (open to everyone, like every
 * read): MACHVM_GENL_CMD_EVENT messages: MACHVM_A_EVENT u32
 *   (MACHVM_EVENT_*), MACHVM_A_OBJ_NAME u64 (object events and
 *   PAGER_TIMEOUT), MACHVM_A_OBJ_PAGER_PID u32 (pager events, object
 *   events of objects with a pager: the pager's pid in the initial pid
 *   namespace; replies to GET_OBJECT give it in the caller's),
 *   MACHVM_A_OBJ_OFFSET u64 (PAGER_TIMEOUT: the request), MACHVM_A_SWAP_ID
 *   u32 and MACHVM_A_SWAP_PATH string (swap events).
 */
#define MACHVM_GENL_NAME		"machvm"
#define MACHVM_GENL_VERSION		2	/* follows MACHVM_ABI_VERSION */
#define MACHVM_GENL_MCGRP_EVENTS	"events"

enum machvm_genl_cmd {
	MACHVM_GENL_CMD_UNSPEC,
	MACHVM_GENL_CMD_GET_STATUS,
	MACHVM_GENL_CMD_GET_OBJECT,
	MACHVM_GENL_CMD_GET_STATS,
	MACHVM_GENL_CMD_DESTROY_OBJECT,
	MACHVM_GENL_CMD_EVENT,
	MACHVM_GENL_CMD_GET_PAGEOUT,
	MACHVM_GENL_CMD_SET_PAGEOUT,
	MACHVM_GENL_CMD_RUN_PAGEOUT,
	MACHVM_GENL_CMD_SWAP_ADD,
	MACHVM_GENL_CMD_SWAP_REMOVE,
	MACHVM_GENL_CMD_GET_SWAP,
	__MACHVM_GENL_CMD_MAX,
};

#define MACHVM_GENL_CMD_MAX (__MACHVM_GENL_CMD_MAX - 1)

/*
 * Attributes: one enum per level, as WireGuard's.  enum machvm_genl_attr
 * is the top level of every message; MACHVM_A_OBJECT holds
 * enum machvm_genl_obj_attr, MACHVM_A_SWAP enum machvm_genl_swap_attr,
 * MACHVM_A_STATS enum machvm_genl_stat.  The top-level MACHVM_A_OBJ_* and
 * MACHVM_A_SWAP_* name one object or store in requests and events.
 */
enum machvm_genl_attr {
	MACHVM_A_UNSPEC,
	MACHVM_A_PAD,			/* alignment of 64-bit attributes */
	MACHVM_A_ABI_VERSION,		/* u32: MACHVM_ABI_VERSION */
	MACHVM_A_PAGE_SIZE,		/* u32: bytes */
	MACHVM_A_FEATURES,		/* u64: MACHVM_F_* */
	MACHVM_A_NR_OBJECTS,		/* u32: live objects */
	MACHVM_A_NR_PAGERS,		/* u32: live pager endpoints */
	MACHVM_A_OBJECT,		/* nest of MACHVM_OBJ_A_* */
	MACHVM_A_STATS,			/* nest of MACHVM_A_STAT_* */
	MACHVM_A_SWAP,			/* nest of MACHVM_SWAP_A_* */
	MACHVM_A_EVENT,			/* u32: MACHVM_EVENT_* */
	MACHVM_A_OBJ_NAME,		/* u64: the object named (requests,
					 * object events, PAGER_TIMEOUT)
					 */
	MACHVM_A_OBJ_LIMIT,		/* u64: SET_PAGEOUT: its resident limit,
					 * pages
					 */
	MACHVM_A_OBJ_PAGER_PID,		/* u32: events: the pager's pid */
	MACHVM_A_OBJ_OFFSET,		/* u64: PAGER_TIMEOUT: the request's
					 * byte offset
					 */
	MACHVM_A_PO_LIMIT,		/* u64: global resident limit, pages */
	MACHVM_A_PO_HIGH,		/* u32: high watermark, percent */
	MACHVM_A_PO_LOW,		/* u32: low watermark, percent */
	MACHVM_A_PO_OBJ_LIMIT,		/* u64: new objects' limit, pages */
	MACHVM_A_PO_BATCH,		/* u32: pages scanned per step */
	MACHVM_A_PO_INTERVAL_MS,	/* u32: period of the idle scan */
	MACHVM_A_PO_RESIDENT,		/* u64: resident pages */
	MACHVM_A_PO_RETURNING,		/* u64: pages under DATA_RETURN */
	MACHVM_A_PO_STUCK,		/* u8: over the limit, nothing can go */
	MACHVM_A_PO_TARGET,		/* u64: RUN_PAGEOUT: pages to free */
	MACHVM_A_PO_FORCE,		/* u8: RUN_PAGEOUT: ignore references */
	MACHVM_A_PO_SCANNED,		/* u64: RUN_PAGEOUT: pages looked at */
	MACHVM_A_PO_FREED,		/* u64: RUN_PAGEOUT: pages freed */
	MACHVM_A_SWAP_ID,		/* u32: the store named (requests,
					 * swap events)
					 */
	MACHVM_A_SWAP_PATH,		/* string: SWAP_ADD, swap events */
	MACHVM_A_SWAP_PRIO,		/* s32: SWAP_ADD */
	MACHVM_A_SWAP_SIZE,		/* u64: SWAP_ADD, bytes */
	__MACHVM_A_MAX,
};

#define MACHVM_A_MAX (__MACHVM_A_MAX - 1)

/* One object, in a MACHVM_A_OBJECT nest (see GET_OBJECT above). */
enum machvm_genl_obj_attr {
	MACHVM_OBJ_A_UNSPEC,
	MACHVM_OBJ_A_PAD,		/* alignment of 64-bit attributes */
	MACHVM_OBJ_A_NAME,		/* u64 */
	MACHVM_OBJ_A_ID,		/* u64 */
	MACHVM_OBJ_A_SIZE,		/* u64 */
	MACHVM_OBJ_A_MAX_PROT,		/* u32 */
	MACHVM_OBJ_A_STATE,		/* u32 */
	MACHVM_OBJ_A_RESIDENT,		/* u64 */
	MACHVM_OBJ_A_MAPPINGS,		/* u32 */
	MACHVM_OBJ_A_PAGER_PID,		/* u32 */
	MACHVM_OBJ_A_PAGER_STATE,	/* u32 */
	MACHVM_OBJ_A_PENDING,		/* u32 */
	MACHVM_OBJ_A_MAY_CACHE,		/* u8 */
	MACHVM_OBJ_A_COPY,		/* u8 */
	MACHVM_OBJ_A_CLUSTER,		/* u32 */
	MACHVM_OBJ_A_TIMEOUT_MS,	/* u32 */
	MACHVM_OBJ_A_FAULTS,		/* u64 */
	MACHVM_OBJ_A_REQUESTS,		/* u64 */
	MACHVM_OBJ_A_SUPPLIED,		/* u64 */
	MACHVM_OBJ_A_ERRORS,		/* u64 */
	MACHVM_OBJ_A_TIMEOUTS,		/* u64 */
	MACHVM_OBJ_A_KIND,		/* u32 */
	MACHVM_OBJ_A_DIRTY,		/* u64 */
	MACHVM_OBJ_A_SWAPPED,		/* u64 */
	MACHVM_OBJ_A_LIMIT,		/* u64 */
	MACHVM_OBJ_A_PAGEOUTS,		/* u64 */
	MACHVM_OBJ_A_PAGEINS,		/* u64 */
	MACHVM_OBJ_A_RETURNED,		/* u64 */
	MACHVM_OBJ_A_DEFAULT_TAKEN,	/* u64 */
	MACHVM_OBJ_A_SCANS,		/* u64 */
	MACHVM_OBJ_A_REF_HITS,		/* u64 */
	__MACHVM_OBJ_A_MAX,
};

#define MACHVM_OBJ_A_MAX (__MACHVM_OBJ_A_MAX - 1)

/* One swap store, in a MACHVM_A_SWAP nest (see GET_SWAP above). */
enum machvm_genl_swap_attr {
	MACHVM_SWAP_A_UNSPEC,
	MACHVM_SWAP_A_PAD,		/* alignment of 64-bit attributes */
	MACHVM_SWAP_A_ID,		/* u32 */
	MACHVM_SWAP_A_PATH,		/* string */
	MACHVM_SWAP_A_KIND,		/* u32 */
	MACHVM_SWAP_A_PRIO,		/* s32 */
	MACHVM_SWAP_A_SLOTS,		/* u64 */
	MACHVM_SWAP_A_USED,		/* u64 */
	MACHVM_SWAP_A_WRITES,		/* u64 */
	MACHVM_SWAP_A_READS,		/* u64 */
	MACHVM_SWAP_A_DIRECT,		/* u8 */
	__MACHVM_SWAP_A_MAX,
};

#define MACHVM_SWAP_A_MAX (__MACHVM_SWAP_A_MAX - 1)

/* Global counters (u64 each) in MACHVM_A_STATS. */
enum machvm_genl_stat {
	MACHVM_A_STAT_UNSPEC,
	MACHVM_A_STAT_FAULTS,		/* faults that reached machvm */
	MACHVM_A_STAT_REQUESTS,		/* data_request messages queued */
	MACHVM_A_STAT_SUPPLIED,		/* pages supplied (data or zero) */
	MACHVM_A_STAT_NOT_TAKEN,	/* supplied pages already resident */
	MACHVM_A_STAT_ERRORS,		/* requests failed by data_error */
	MACHVM_A_STAT_TIMEOUTS,		/* requests that timed out */
	MACHVM_A_STAT_SIGBUS,		/* faults ended with SIGBUS */
	MACHVM_A_STAT_OBJECTS_CREATED,
	MACHVM_A_STAT_OBJECTS_TERMINATED,
	MACHVM_A_STAT_PAGERS_DIED,	/* pager endpoints closed */
	MACHVM_A_STAT_PAD,
	MACHVM_A_STAT_PAGEOUTS,		/* pages freed by pageout */
	MACHVM_A_STAT_PAGEINS,		/* pages read back from swap */
	MACHVM_A_STAT_RETURNED,		/* pages taken by pagers (data_return) */
	MACHVM_A_STAT_DEFAULT_TAKEN,	/* pages the default pager took from
					 * pagers (refused, timed out, dead)
					 */
	MACHVM_A_STAT_SCANS,		/* pages looked at by pageout */
	MACHVM_A_STAT_REF_HITS,		/* second chances given */
	MACHVM_A_STAT_SWAP_WRITES,	/* pages written to swap */
	MACHVM_A_STAT_SWAP_FULL,	/* pages that found no free slot */
	MACHVM_A_STAT_RESIDENT,		/* gauge: resident pages */
	MACHVM_A_STAT_SWAPPED,		/* gauge: swap slots in use */
	MACHVM_A_STAT_LIMIT_WAITS,	/* faults that waited for room */
	MACHVM_A_STAT_LOCK_REQUESTS,	/* lock_request commands */
	__MACHVM_A_STAT_MAX,
};

#define MACHVM_A_STAT_MAX (__MACHVM_A_STAT_MAX - 1)

#define MACHVM_OBJ_STATE_NEW		0	/* never mapped */
#define MACHVM_OBJ_STATE_INIT		1	/* init sent, not ready */
#define MACHVM_OBJ_STATE_READY		2
#define MACHVM_OBJ_STATE_DESTROYED	3

#define MACHVM_PAGER_STATE_LIVE		0
#define MACHVM_PAGER_STATE_DEAD		1	/* endpoint closed */
#define MACHVM_PAGER_STATE_NONE		2	/* anonymous object */

#define MACHVM_OBJ_KIND_PAGER		0	/* served by a user pager */
#define MACHVM_OBJ_KIND_ANON		1	/* default pager only */

#define MACHVM_SWAP_KIND_FILE		0
#define MACHVM_SWAP_KIND_BDEV		1

#define MACHVM_EVENT_OBJECT_CREATED	1
#define MACHVM_EVENT_OBJECT_TERMINATED	2	/* last mapping and right gone */
#define MACHVM_EVENT_OBJECT_DESTROYED	3	/* DESTROY by pager or admin */
#define MACHVM_EVENT_PAGER_ATTACHED	4	/* endpoint created */
#define MACHVM_EVENT_PAGER_DIED		5	/* endpoint closed */
#define MACHVM_EVENT_PAGER_TIMEOUT	6	/* a request timed out */
#define MACHVM_EVENT_SWAP_ADDED		7
#define MACHVM_EVENT_SWAP_REMOVED	8
#define MACHVM_EVENT_SWAP_FULL		9	/* every store is full */

#endif /* _UAPI_LINUX_MACHVM_H */
