#pragma once
/// What a compiled kernel costs a multiprocessor, read without a GPU: the kernels in a
/// binary (the entry functions of its ELF symbol table, cubin or hsaco), and for NVIDIA
/// targets the registers, shared memory, stack frame and spills that ptxas reports when
/// asked (`-Xptxas=-v`, see resource_usage_flag), with the block size a kernel's
/// __launch_bounds__ fixes (the cubin's .nv.info) and the largest block its registers allow.
///
///   Options o;  o.target = "sm_90";  o.extra.push_back(resource_usage_flag);
///   Binary b = KernelCache::global().get(program, o);
///   for (const KernelResources& k : kernel_resources(b)) ...

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "program.hpp"

namespace kiln::jit {

/// The NVRTC flag that makes ptxas write each kernel's resources into the compile log.
inline constexpr const char* resource_usage_flag = "-Xptxas=-v";

/// One kernel's resources. -1: unknown (not in the log, or not an NVIDIA target).
struct KernelResources {
  std::string name;                  ///< the symbol's (mangled) name
  int registers = -1;                ///< per thread
  int barriers = -1;                 ///< named barriers used
  long long shared_bytes = -1;       ///< static shared memory per block
  long long stack_bytes = -1;        ///< local memory per thread: the stack frame
  long long spill_store_bytes = -1;  ///< local memory written by register spills, per thread
  long long spill_load_bytes = -1;   ///< ... and read back
  long long constant_bytes = -1;     ///< cmem[0]: the kernel's parameters and constants
  int launch_bound_threads = 0;      ///< __launch_bounds__' maximum threads (0: none)
  /// The largest block the kernel can launch with: 1024, __launch_bounds__, and the
  /// register file (65536 registers a block, allocated 256 a warp at a time on sm_80 to
  /// sm_90) each limit it; -1 where the registers are unknown.
  int max_threads_per_block = -1;
};

namespace detail {

template <class T>
T elf_read(std::string_view elf, std::uint64_t at) {
  T v{};
  if (at > elf.size() || elf.size() - at < sizeof(T)) return v;
  std::memcpy(&v, elf.data() + at, sizeof(T));
  return v;
}

struct ElfSection {
  std::string name;
  std::uint32_t name_at = 0;  ///< the name's offset in the section-name table
  std::uint32_t type = 0;
  std::uint64_t offset = 0, size = 0, entsize = 0;
  std::uint32_t link = 0;
};

/// The sections of a little-endian ELF64 file (cubin, hsaco); empty for anything else.
inline std::vector<ElfSection> elf_sections(std::string_view elf) {
  std::vector<ElfSection> out;
  if (elf.size() < 64 ||
      elf.substr(0, 4) != std::string_view("\x7f"
                                           "ELF",
                                           4) ||
      elf[4] != 2 || elf[5] != 1) {
    return out;
  }
  const auto shoff = elf_read<std::uint64_t>(elf, 0x28);
  const auto shentsize = elf_read<std::uint16_t>(elf, 0x3a);
  const auto shnum = elf_read<std::uint16_t>(elf, 0x3c);
  const auto shstrndx = elf_read<std::uint16_t>(elf, 0x3e);
  if (shentsize < 64 || shoff >= elf.size() || (elf.size() - shoff) / shentsize < shnum) return out;
  for (std::uint16_t i = 0; i < shnum; ++i) {
    const std::uint64_t h = shoff + std::uint64_t(i) * shentsize;
    ElfSection s;
    s.name_at = elf_read<std::uint32_t>(elf, h);
    s.type = elf_read<std::uint32_t>(elf, h + 4);
    s.offset = elf_read<std::uint64_t>(elf, h + 0x18);
    s.size = elf_read<std::uint64_t>(elf, h + 0x20);
    s.link = elf_read<std::uint32_t>(elf, h + 0x28);
    s.entsize = elf_read<std::uint64_t>(elf, h + 0x38);
    // NOBITS sections (8) occupy no bytes of the file.
    if (s.type != 8 && (s.offset > elf.size() || elf.size() - s.offset < s.size)) s.size = 0;
    out.push_back(std::move(s));
  }
  auto string_at = [&](const ElfSection& table, std::uint64_t at) {
    if (at >= table.size) return std::string();
    std::string_view rest = elf.substr(table.offset + at, table.size - at);
    return std::string(rest.substr(0, rest.find('\0')));
  };
  const ElfSection names = shstrndx < out.size() ? out[shstrndx] : ElfSection{};
  for (ElfSection& s : out) s.name = string_at(names, s.name_at);
  return out;
}

/// The entry functions of an ELF64 cubin or hsaco: FUNC symbols of global or weak binding
/// (for a cubin, only those marked as kernels, STO_CUDA_ENTRY), in symbol-table order.
inline std::vector<std::string> elf_kernel_names(std::string_view elf) {
  const std::vector<ElfSection> sections = elf_sections(elf);
  const bool cuda = elf_read<std::uint16_t>(elf, 0x12) == 190;  // EM_CUDA
  std::vector<std::string> names;
  for (const ElfSection& symtab : sections) {
    if (symtab.type != 2 || symtab.entsize < 24 || symtab.link >= sections.size()) continue;
    const ElfSection& strtab = sections[symtab.link];
    for (std::uint64_t at = symtab.offset; at + 24 <= symtab.offset + symtab.size;
         at += symtab.entsize) {
      const auto name_at = elf_read<std::uint32_t>(elf, at);
      const auto info = elf_read<std::uint8_t>(elf, at + 4);
      const auto other = elf_read<std::uint8_t>(elf, at + 5);
      const int type = info & 0xf, bind = info >> 4;
      if (type != 2 || (bind != 1 && bind != 2)) continue;  // STT_FUNC; GLOBAL or WEAK
      if (cuda && (other & 0x10) == 0) continue;            // STO_CUDA_ENTRY
      if (name_at >= strtab.size) continue;
      std::string_view rest = elf.substr(strtab.offset + name_at, strtab.size - name_at);
      names.emplace_back(rest.substr(0, rest.find('\0')));
    }
  }
  return names;
}

/// The block size __launch_bounds__ fixed for `kernel` (EIATTR_MAX_THREADS in the cubin's
/// .nv.info.<kernel>), or 0.
inline int cubin_launch_bound(std::string_view elf, const std::vector<ElfSection>& sections,
                              const std::string& kernel) {
  for (const ElfSection& s : sections) {
    if (s.name != ".nv.info." + kernel) continue;
    // Entries: u8 format, u8 attribute, u16 value or size; format 4 (EIFMT_SVAL) has `size`
    // bytes of data after the four.
    for (std::uint64_t at = s.offset; at + 4 <= s.offset + s.size;) {
      const auto format = elf_read<std::uint8_t>(elf, at);
      const auto attribute = elf_read<std::uint8_t>(elf, at + 1);
      const auto value = elf_read<std::uint16_t>(elf, at + 2);
      if (format == 4 && attribute == 0x05 && value >= 12) {
        const auto x = elf_read<std::uint32_t>(elf, at + 4);
        const auto y = elf_read<std::uint32_t>(elf, at + 8);
        const auto z = elf_read<std::uint32_t>(elf, at + 12);
        const std::uint64_t threads = std::uint64_t(x) * y * z;
        return threads > 0 && threads <= 1024 ? int(threads) : 0;
      }
      at += 4 + (format == 4 ? value : 0);
    }
  }
  return 0;
}

/// The number in `text` after `from` (skipping spaces), or -1.
inline long long number_at(std::string_view text, std::size_t from) {
  while (from < text.size() && text[from] == ' ') ++from;
  long long v = 0;
  std::size_t end = from;
  while (end < text.size() && text[end] >= '0' && text[end] <= '9' && end - from < 15) {
    v = v * 10 + (text[end++] - '0');
  }
  return end == from ? -1 : v;
}

/// The number just before `label` in `line` ("1024 bytes smem" with label " bytes smem"),
/// or -1.
inline long long number_before(std::string_view line, std::string_view label) {
  const std::size_t at = line.find(label);
  if (at == std::string_view::npos) return -1;
  std::size_t start = at;
  while (start > 0 && line[start - 1] >= '0' && line[start - 1] <= '9') --start;
  return start == at ? -1 : number_at(line, start);
}

}  // namespace detail

/// The kernels ptxas describes in a compile log made with resource_usage_flag, in the
/// order it compiled them. Reads the lines
///   ptxas info    : Function properties for NAME
///   ptxas         .     N bytes stack frame, N bytes spill stores, N bytes spill loads
///   ptxas info    : Used N registers, used N barriers, N bytes smem, N bytes cmem[0]
/// (a kernel that uses no shared memory has no "smem": 0). Other lines are ignored.
inline std::vector<KernelResources> parse_ptxas_resources(std::string_view log) {
  std::vector<KernelResources> out;
  KernelResources* current = nullptr;
  for (std::size_t start = 0; start < log.size();) {
    std::size_t end = log.find('\n', start);
    if (end == std::string_view::npos) end = log.size();
    const std::string_view line = log.substr(start, end - start);
    start = end + 1;
    if (!line.starts_with("ptxas")) continue;
    if (const auto at = line.find("Function properties for "); at != std::string_view::npos) {
      std::string_view name = line.substr(at + 24);
      while (!name.empty() && (name.back() == ' ' || name.back() == '\r')) name.remove_suffix(1);
      out.push_back(KernelResources{std::string(name)});
      current = &out.back();
    } else if (current && line.find("bytes stack frame") != std::string_view::npos) {
      current->stack_bytes = detail::number_before(line, " bytes stack frame");
      current->spill_store_bytes = detail::number_before(line, " bytes spill stores");
      current->spill_load_bytes = detail::number_before(line, " bytes spill loads");
    } else if (current && line.find(": Used ") != std::string_view::npos) {
      current->registers = int(detail::number_at(line, line.find(": Used ") + 7));
      current->barriers = int(detail::number_before(line, " barriers"));
      if (current->barriers < 0) {
        const auto used = line.find("used ");
        if (used != std::string_view::npos) {
          current->barriers = int(detail::number_at(line, used + 5));
        }
      }
      const long long smem = detail::number_before(line, " bytes smem");
      current->shared_bytes = smem < 0 ? 0 : smem;
      current->constant_bytes = detail::number_before(line, " bytes cmem[0]");
    }
  }
  return out;
}

/// The largest block of a kernel using `registers` registers a thread (and a
/// __launch_bounds__ of `launch_bound` threads, 0: none) on sm_80 to sm_90: 65536
/// registers a block, allocated per warp in units of 256.
inline int max_threads_for_registers(int registers, int launch_bound = 0) {
  if (registers < 0) return -1;
  int threads = 1024;
  if (registers > 0) {
    const int per_warp = (registers * 32 + 255) / 256 * 256;
    threads = std::min(threads, 65536 / per_warp * 32);
  }
  if (launch_bound > 0) threads = std::min(threads, launch_bound);
  return threads;
}

/// Every kernel of `binary`: its names from the code's symbol table, with, for NVIDIA
/// targets, what ptxas wrote in the binary's log (compiled with resource_usage_flag) and
/// the cubin's launch bounds. Kernels ptxas did not describe keep -1 (unknown).
inline std::vector<KernelResources> kernel_resources(const Binary& binary) {
  const std::vector<std::string> names = detail::elf_kernel_names(binary.code);
  const std::vector<KernelResources> logged = parse_ptxas_resources(binary.log);
  const std::vector<detail::ElfSection> sections = detail::elf_sections(binary.code);
  std::vector<KernelResources> out;
  for (const std::string& name : names) {
    auto found = std::find_if(logged.begin(), logged.end(),
                              [&](const KernelResources& k) { return k.name == name; });
    KernelResources k = found != logged.end() ? *found : KernelResources{name};
    k.launch_bound_threads = detail::cubin_launch_bound(binary.code, sections, name);
    k.max_threads_per_block = max_threads_for_registers(k.registers, k.launch_bound_threads);
    out.push_back(std::move(k));
  }
  return out;
}

}  // namespace kiln::jit
