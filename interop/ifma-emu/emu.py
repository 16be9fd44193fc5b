"""Minimal Bochs (bochscpu-python) harness: identity-mapped 4-level long mode, ring 3,
call a function with the SysV ABI; it returns to an unmapped MAGIC address, whose
instruction-fetch #PF stops the run."""
import struct
import bochscpu, bochscpu.cpu, bochscpu.memory

PAGE = bochscpu.memory.page_size()
PML4 = 0x0010_0000          # page tables from here (Commit allocates consecutively)
STACK = 0x2000_0000          # 16 pages
DATA = 0x3000_0000
MAGIC = 0x0dea_d000          # never mapped
RW, CODE = 1, 0


class Machine:
    def __init__(self, regions):
        """regions: list of (va, bytes, writable). VA == PA."""
        self.sess = bochscpu.Session()
        self.sess.missing_page_handler = self._missing
        self.pt = bochscpu.memory.PageMapLevel4Table()
        self.pages = {}
        regions = list(regions) + [(STACK, b"\0" * (16 * PAGE), True), (DATA, b"\0" * (64 * PAGE), True)]
        for va, data, w in regions:
            start = va & ~(PAGE - 1)
            end = (va + len(data) + PAGE - 1) & ~(PAGE - 1)
            for pva in range(start, end, PAGE):
                if pva not in self.pages:
                    hva = bochscpu.memory.allocate_host_page()
                    bochscpu.memory.page_insert(pva, hva)
                    self.pt.insert(pva, pva, RW if w else CODE)
                    self.pages[pva] = hva
        for hva, gpa in self.pt.commit(PML4):
            assert gpa not in self.pages
            bochscpu.memory.page_insert(gpa, hva)
        for va, data, w in regions:
            if data:
                self.write(va, data)
        self.exc = None

    def _missing(self, gpa):
        raise RuntimeError(f"missing physical page {gpa:#x}")

    def write(self, va, data):
        assert bochscpu.memory.virt_write(PML4, va, bytearray(data))

    def read(self, va, n):
        return bytes(bochscpu.memory.virt_read(PML4, va, n))

    def write_u64s(self, va, xs):
        self.write(va, struct.pack(f"<{len(xs)}Q", *xs))

    def read_u64s(self, va, n):
        return list(struct.unpack(f"<{n}Q", self.read(va, 8 * n)))

    def _exception(self, sess, cpu_id, vector, error_code):
        self.exc = (vector, error_code)
        sess.stop()

    def call(self, rip, args=(), count=None, xcr0=0xE7, trace=None):
        st = bochscpu.State()
        bochscpu.cpu.set_long_mode(st)
        cr0 = st.cr0
        cr0 &= ~(1 << 2)        # EM = 0
        cr0 |= (1 << 1)         # MP = 1
        st.cr0 = cr0
        st.cr4 = st.cr4 | (1 << 9) | (1 << 10) | (1 << 18)  # OSFXSR, OSXMMEXCPT, OSXSAVE
        st.xcr0 = xcr0          # x87, SSE, AVX, opmask, ZMM_Hi256, Hi16_ZMM
        st.mxcsr = 0x1F80
        st.mxcsr_mask = 0xFFFF
        st.fpcw = 0x37F
        st.cr3 = PML4
        st.rflags = 0x202
        cs = bochscpu.Segment()
        cs.present, cs.selector, cs.base, cs.limit, cs.attr = True, 0x33, 0, 0xFFFF_FFFF, 0x22FB
        ds = bochscpu.Segment()
        ds.present, ds.selector, ds.base, ds.limit, ds.attr = True, 0x2B, 0, 0xFFFF_FFFF, 0xCF3
        st.cs = cs
        st.ds = st.ss = st.es = st.fs = st.gs = ds
        rsp = STACK + 15 * PAGE          # 16-byte aligned; after the push below, rsp = 8 mod 16
        rsp -= 8
        self.write_u64s(rsp, [MAGIC])
        st.rsp = rsp
        regs = ["rdi", "rsi", "rdx", "rcx", "r8", "r9"]
        for r, v in zip(regs, args):
            setattr(st, r, v)
        st.rip = rip
        self.sess.cpu.state = st
        self.exc = None
        hook = bochscpu.Hook()
        hook.exception = self._exception
        if count is not None:
            def after(sess, cpu_id, insn):
                count[0] += 1
            hook.after_execution = after
        if trace is not None:
            def before(sess, cpu_id, insn):
                trace.append(sess.cpu.rip)
            hook.before_execution = before
        self.sess.run([hook])
        out = self.sess.cpu.state
        return out, self.exc

    def returned(self, st, exc):
        """True iff the function ran to its `ret` into MAGIC (#PF on fetch there)."""
        return exc is not None and exc[0] == 14 and st.rip == MAGIC
