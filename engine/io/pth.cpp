// torch.save zip archives: a zip reader (stored entries, zip64), a restricted unpickler that walks the stack
// shape of a state dict without executing anything, and a writer that produces torch.save's layout.
// Ref: ../shared/docs/wan21-reference.md §1.2; golden README §1.1.
#include "io/store_impl.h"

#include "core/core.h"
#include "io/untrusted.h"

#include <ATen/ATen.h>

#include <cstring>
#include <unordered_map>
#include <variant>

namespace wan::io {
namespace {

// ---- zip ---------------------------------------------------------------------------------------------

struct ZipEntry {
    std::string name;
    uint64_t data_offset = 0;  // absolute offset of the entry's bytes
    uint64_t size = 0;
};

template <typename T>
T read_le(const uint8_t* p) {
    T v;
    std::memcpy(&v, p, sizeof(T));
    return v;
}

// The zip64 end-of-central-directory record that the classic end record defers to (0xFFFF count or
// 0xFFFFFFFF size/offset). Every offset it names is bounded by the file before it is read.
void read_zip64_end(const MappedFile& f, uint64_t eocd, uint64_t* count, uint64_t* cd_size, uint64_t* cd_offset) {
    const std::string& path = f.path();
    const uint8_t* d = f.data();
    WAN_CHECK(eocd >= 20 && read_le<uint32_t>(d + eocd - 20) == 0x07064b50u,
              "%s: zip end record defers to a zip64 record, but the zip64 locator is missing", path.c_str());
    const uint64_t z64 = read_le<uint64_t>(d + eocd - 20 + 8);
    WAN_CHECK(range_in_file(z64, 56, eocd - 20) && read_le<uint32_t>(d + z64) == 0x06064b50u,
              "%s: zip64 locator points at offset %llu, where no zip64 end record is (file has %llu bytes): corrupt",
              path.c_str(), static_cast<unsigned long long>(z64), static_cast<unsigned long long>(f.size()));
    *count = read_le<uint64_t>(d + z64 + 32);
    *cd_size = read_le<uint64_t>(d + z64 + 40);
    *cd_offset = read_le<uint64_t>(d + z64 + 48);
}

// The zip64 "extended information" extra field (id 1): the 0xFFFFFFFF fields of the central entry follow in
// this order. Each read stays inside the extra field, and the field inside the entry's extra area.
void read_zip64_extra(const std::string& path, const std::string& name, const uint8_t* e, const uint8_t* e_end,
                      uint64_t* uncomp, uint64_t* comp, uint64_t* local) {
    while (e_end - e >= 4) {
        const uint16_t id = read_le<uint16_t>(e), len = read_le<uint16_t>(e + 2);
        WAN_CHECK(len <= e_end - e - 4, "%s: zip entry '%s': extra field of %u bytes runs past its entry",
                  path.c_str(), name.c_str(), len);
        if (id == 0x0001) {
            const uint8_t* q = e + 4;
            const uint8_t* q_end = q + len;
            for (uint64_t* field : {uncomp, comp, local}) {
                if (*field != 0xFFFFFFFFu) continue;
                WAN_CHECK(q_end - q >= 8, "%s: zip entry '%s': zip64 extra field too short", path.c_str(),
                          name.c_str());
                *field = read_le<uint64_t>(q);
                q += 8;
            }
        }
        e += 4 + len;
    }
}

std::vector<ZipEntry> read_zip_directory(const MappedFile& f) {
    const std::string& path = f.path();
    const uint8_t* d = f.data();
    const uint64_t size = f.size();
    WAN_CHECK(size >= 22, "%s: too small to be a zip archive (%llu bytes)", path.c_str(),
              static_cast<unsigned long long>(size));
    // End of central directory: scan back over at most the 64 KiB comment.
    uint64_t eocd = 0;
    bool found = false;
    const uint64_t lowest = size > 22 + 65535 ? size - 22 - 65535 : 0;
    for (uint64_t p = size - 22 + 1; p-- > lowest;) {
        if (read_le<uint32_t>(d + p) == 0x06054b50u) {
            eocd = p;
            found = true;
            break;
        }
    }
    WAN_CHECK(found, "%s: no zip end-of-central-directory record: the file is truncated or not a zip", path.c_str());
    uint64_t count = read_le<uint16_t>(d + eocd + 10);
    uint64_t cd_size = read_le<uint32_t>(d + eocd + 12);
    uint64_t cd_offset = read_le<uint32_t>(d + eocd + 16);
    if (count == 0xFFFF || cd_offset == 0xFFFFFFFFu || cd_size == 0xFFFFFFFFu)
        read_zip64_end(f, eocd, &count, &cd_size, &cd_offset);
    WAN_CHECK(range_in_file(cd_offset, cd_size, size), "%s: zip central directory [%llu, +%llu) out of range",
              path.c_str(), static_cast<unsigned long long>(cd_offset), static_cast<unsigned long long>(cd_size));
    // Each central entry takes at least 46 bytes: a count the directory cannot hold is corrupt.
    WAN_CHECK(count <= cd_size / 46, "%s: zip claims %llu entries in a central directory of %llu bytes",
              path.c_str(), static_cast<unsigned long long>(count), static_cast<unsigned long long>(cd_size));
    const uint64_t cd_end = cd_offset + cd_size;
    std::vector<ZipEntry> entries;
    uint64_t p = cd_offset;
    for (uint64_t i = 0; i < count; ++i) {
        WAN_CHECK(range_in_file(p, 46, cd_end) && read_le<uint32_t>(d + p) == 0x02014b50u,
                  "%s: zip central directory entry %llu corrupt", path.c_str(), static_cast<unsigned long long>(i));
        const uint16_t method = read_le<uint16_t>(d + p + 10);
        uint64_t comp = read_le<uint32_t>(d + p + 20);
        uint64_t uncomp = read_le<uint32_t>(d + p + 24);
        const uint16_t name_len = read_le<uint16_t>(d + p + 28);
        const uint16_t extra_len = read_le<uint16_t>(d + p + 30);
        const uint16_t comment_len = read_le<uint16_t>(d + p + 32);
        uint64_t local = read_le<uint32_t>(d + p + 42);
        const uint64_t entry_len = 46ull + name_len + extra_len + comment_len;  // ≤ 46 + 3 × 65535: no wrap
        WAN_CHECK(range_in_file(p, entry_len, cd_end), "%s: zip central directory truncated", path.c_str());
        std::string name(reinterpret_cast<const char*>(d + p + 46), name_len);
        const uint8_t* extra = d + p + 46 + name_len;
        read_zip64_extra(path, name, extra, extra + extra_len, &uncomp, &comp, &local);
        WAN_CHECK(method == 0, "%s: zip entry '%s' is compressed (method %u); torch.save stores entries uncompressed",
                  path.c_str(), name.c_str(), method);
        WAN_CHECK(range_in_file(local, 30, size) && read_le<uint32_t>(d + local) == 0x04034b50u,
                  "%s: zip local header of '%s' corrupt (offset %llu)", path.c_str(), name.c_str(),
                  static_cast<unsigned long long>(local));
        const uint64_t data = local + 30 + read_le<uint16_t>(d + local + 26) + read_le<uint16_t>(d + local + 28);
        WAN_CHECK(range_in_file(data, uncomp, size),
                  "%s: zip entry '%s' (%llu bytes) runs past the end of the file: truncated", path.c_str(),
                  name.c_str(), static_cast<unsigned long long>(uncomp));
        entries.push_back({name, data, uncomp});
        p += entry_len;
    }
    return entries;
}

// ---- restricted unpickler ----------------------------------------------------------------------------
// Only the objects a state dict is made of. Globals are looked up in a whitelist and turned into tags;
// nothing is ever "called" except the three whitelisted constructors, interpreted here.
//
// The structure is untrusted: objects live in one arena owned by the Unpickler and refer to each other by
// plain pointers, so nothing ever recurses over it (a list nested 200,000 deep used to overflow the stack in
// the recursive destructor of shared pointers) and memo cycles cannot leak. The object count and nesting
// depth are capped far above what a state dict uses.

struct Obj;
using ObjPtr = Obj*;

/// A state dict needs ~15 objects per tensor; a million objects is ~60,000 tensors (Wan's largest .pth,
/// the UMT5-XXL encoder, has 242) and bounds memory at ~150 MB whatever the file claims.
constexpr size_t kMaxPickleObjects = 1000000;
/// A state dict nests 5 levels (dict → tensor → rebuild args → storage id tuple → string).
constexpr int kMaxPickleDepth = 100;

enum class Global { OrderedDict, RebuildTensorV2, RebuildParameter, Storage };

struct StorageRef {
    at::ScalarType dtype;
    std::string key;
    int64_t numel;
};
struct TensorRef {
    StorageRef storage;
    int64_t offset;
    std::vector<int64_t> size, stride;
};

struct Obj {
    enum class Kind { None, Bool, Int, Float, Str, Tuple, List, Dict, Global, Storage, Tensor, Mark } kind = Kind::None;
    int64_t i = 0;
    double f = 0;
    std::string s;
    std::vector<ObjPtr> items;                      // tuple, list
    std::vector<std::pair<ObjPtr, ObjPtr>> dict;    // dict / OrderedDict, in insertion order
    Global global{};
    at::ScalarType storage_dtype = at::kFloat;      // Global::Storage
    std::shared_ptr<StorageRef> storage;
    std::shared_ptr<TensorRef> tensor;
    int depth = 1;  // levels of containers below and including this one, as far as seen when items were added
};

bool storage_dtype_from_name(const std::string& name, at::ScalarType* out) {
    static const std::pair<const char*, at::ScalarType> table[] = {
        {"FloatStorage", at::kFloat}, {"DoubleStorage", at::kDouble}, {"HalfStorage", at::kHalf},
        {"BFloat16Storage", at::kBFloat16}, {"LongStorage", at::kLong}, {"IntStorage", at::kInt},
        {"ShortStorage", at::kShort}, {"CharStorage", at::kChar}, {"ByteStorage", at::kByte},
        {"BoolStorage", at::kBool}};
    for (const auto& [n, t] : table) {
        if (name == n) { *out = t; return true; }
    }
    return false;
}

class Unpickler {
public:
    Unpickler(const uint8_t* data, uint64_t size, std::string context)
        : begin_(data), p_(data), end_(data + size), ctx_(std::move(context)) {}

    ObjPtr run() {
        while (true) {
            uint8_t op = byte();
            switch (op) {
                case 0x80: byte(); break;                       // PROTO
                case 0x95: take(8); break;                      // FRAME
                case '.': WAN_CHECK(stack_.size() == 1, "%s: pickle ends with %zu objects on the stack", ctx_.c_str(), stack_.size());
                          return stack_.back();                 // STOP
                case '(': push(make(Obj::Kind::Mark)); break;   // MARK
                case ')': push(make(Obj::Kind::Tuple)); break;  // EMPTY_TUPLE
                case ']': push(make(Obj::Kind::List)); break;   // EMPTY_LIST
                case '}': push(make(Obj::Kind::Dict)); break;   // EMPTY_DICT
                case 'N': push(make(Obj::Kind::None)); break;
                case 0x88: case 0x89: { auto o = make(Obj::Kind::Bool); o->i = op == 0x88; push(o); break; }
                case 'K': push_int(byte()); break;               // BININT1
                case 'M': push_int(read_le<uint16_t>(take(2))); break;  // BININT2
                case 'J': push_int(read_le<int32_t>(take(4))); break;   // BININT
                case 0x8a: {                                     // LONG1
                    uint8_t n = byte();
                    WAN_CHECK(n <= 8, "%s: pickle integer of %u bytes is too large", ctx_.c_str(), n);
                    const uint8_t* b = take(n);
                    uint64_t v = 0;
                    for (int k = n - 1; k >= 0; --k) v = (v << 8) | b[k];
                    if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~uint64_t(0) << (8 * n);
                    push_int(static_cast<int64_t>(v));
                    break;
                }
                case 'G': {                                      // BINFLOAT (big-endian)
                    const uint8_t* b = take(8);
                    uint64_t bits = 0;
                    for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[k];
                    auto o = make(Obj::Kind::Float);
                    std::memcpy(&o->f, &bits, 8);
                    push(o);
                    break;
                }
                case 'X': push_str(read_le<uint32_t>(take(4))); break;  // BINUNICODE
                case 0x8c: push_str(byte()); break;                      // SHORT_BINUNICODE
                case 0x8d: push_str(read_le<uint64_t>(take(8))); break;  // BINUNICODE8
                case 'U': push_str(byte()); break;                       // SHORT_BINSTRING
                case 'T': push_str(read_le<uint32_t>(take(4))); break;   // BINSTRING
                case 'q': memo_put(byte()); break;                  // BINPUT
                case 'r': memo_put(read_le<uint32_t>(take(4))); break;  // LONG_BINPUT
                case 0x94: memo_put(memo_.size()); break;           // MEMOIZE
                case 'h': push(memo_get(byte())); break;                 // BINGET
                case 'j': push(memo_get(read_le<uint32_t>(take(4)))); break;  // LONG_BINGET
                case 't': { auto o = make(Obj::Kind::Tuple); o->items = pop_to_mark(); for (auto x : o->items) nest(o, x); push(o); break; }
                case 0x85: case 0x86: case 0x87: {                       // TUPLE1..3
                    size_t n = op - 0x84u;
                    auto o = make(Obj::Kind::Tuple);
                    o->items.resize(n);
                    for (size_t k = n; k-- > 0;) { o->items[k] = pop(); nest(o, o->items[k]); }
                    push(o);
                    break;
                }
                case 'c': {                                              // GLOBAL
                    std::string module = line(), name = line();
                    push(resolve_global(module, name));
                    break;
                }
                case 0x93: {                                             // STACK_GLOBAL
                    ObjPtr name = pop(), module = pop();
                    WAN_CHECK(name->kind == Obj::Kind::Str && module->kind == Obj::Kind::Str,
                              "%s: malformed STACK_GLOBAL", ctx_.c_str());
                    push(resolve_global(module->s, name->s));
                    break;
                }
                case 'Q': push(persistent_load(pop())); break;           // BINPERSID
                case 'R': { ObjPtr args = pop(); ObjPtr fn = pop(); push(reduce(fn, args)); break; }
                case 'b': { pop(); break; }                              // BUILD: state (_metadata) is ignored
                case 's': { ObjPtr v = pop(), k = pop(); add_item(dict_of(top()), k, v); break; }
                case 'u': {                                              // SETITEMS
                    auto items = pop_to_mark();
                    WAN_CHECK(items.size() % 2 == 0, "%s: SETITEMS with an odd item count", ctx_.c_str());
                    auto d = dict_of(top());
                    for (size_t k = 0; k < items.size(); k += 2) add_item(d, items[k], items[k + 1]);
                    break;
                }
                case 'a': { ObjPtr v = pop(); auto l = list_of(top()); l->items.push_back(v); nest(l, v); break; }
                case 'e': { auto items = pop_to_mark(); auto l = list_of(top()); for (auto& v : items) { l->items.push_back(v); nest(l, v); } break; }
                default:
                    WAN_THROW("%s: unsupported pickle opcode 0x%02x at byte %lld (only state-dict pickles are read)",
                              ctx_.c_str(), op, static_cast<long long>(p_ - 1 - begin_));
            }
        }
    }

private:
    uint8_t byte() { return *take(1); }
    const uint8_t* take(uint64_t n) {
        WAN_CHECK(static_cast<uint64_t>(end_ - p_) >= n, "%s: pickle data truncated", ctx_.c_str());
        const uint8_t* r = p_;
        p_ += n;
        return r;
    }
    std::string line() {
        const uint8_t* s = p_;
        while (p_ < end_ && *p_ != '\n') ++p_;
        WAN_CHECK(p_ < end_, "%s: pickle data truncated", ctx_.c_str());
        std::string r(reinterpret_cast<const char*>(s), p_ - s);
        ++p_;
        return r;
    }
    ObjPtr make(Obj::Kind k) {
        WAN_CHECK(arena_.size() < kMaxPickleObjects,
                  "%s: pickle builds more than %zu objects: not a state dict we read (corrupt or hostile file)",
                  ctx_.c_str(), kMaxPickleObjects);
        arena_.push_back(std::make_unique<Obj>());
        arena_.back()->kind = k;
        return arena_.back().get();
    }
    // Records that `child` is now inside `parent` and enforces the depth cap.
    void nest(const ObjPtr& parent, const ObjPtr& child) {
        parent->depth = std::max(parent->depth, child->depth + 1);
        WAN_CHECK(parent->depth <= kMaxPickleDepth,
                  "%s: pickle nests objects deeper than %d levels: not a state dict we read (corrupt or hostile file)",
                  ctx_.c_str(), kMaxPickleDepth);
    }
    void push(ObjPtr o) {
        // References to memoised objects are pushed without a new object: the stack gets its own cap.
        WAN_CHECK(stack_.size() < kMaxPickleObjects, "%s: pickle stack holds more than %zu items: not a state dict",
                  ctx_.c_str(), kMaxPickleObjects);
        stack_.push_back(o);
    }
    void memo_put(uint64_t key) {
        WAN_CHECK(memo_.size() < kMaxPickleObjects || memo_.count(key) != 0,
                  "%s: pickle memo holds more than %zu items: not a state dict", ctx_.c_str(), kMaxPickleObjects);
        memo_[key] = top();
    }
    void push_int(int64_t v) { auto o = make(Obj::Kind::Int); o->i = v; push(o); }
    void push_str(uint64_t n) { auto o = make(Obj::Kind::Str); const uint8_t* b = take(n); o->s.assign(reinterpret_cast<const char*>(b), n); push(o); }
    ObjPtr pop() {
        WAN_CHECK(!stack_.empty() && stack_.back()->kind != Obj::Kind::Mark, "%s: pickle stack underflow", ctx_.c_str());
        ObjPtr o = stack_.back();
        stack_.pop_back();
        return o;
    }
    ObjPtr top() {
        WAN_CHECK(!stack_.empty(), "%s: pickle stack underflow", ctx_.c_str());
        return stack_.back();
    }
    std::vector<ObjPtr> pop_to_mark() {
        std::vector<ObjPtr> items;
        while (true) {
            WAN_CHECK(!stack_.empty(), "%s: pickle MARK missing", ctx_.c_str());
            ObjPtr o = stack_.back();
            stack_.pop_back();
            if (o->kind == Obj::Kind::Mark) break;
            items.push_back(o);
        }
        std::reverse(items.begin(), items.end());
        return items;
    }
    ObjPtr memo_get(uint64_t k) {
        auto it = memo_.find(k);
        WAN_CHECK(it != memo_.end(), "%s: pickle memo key %llu missing", ctx_.c_str(), static_cast<unsigned long long>(k));
        return it->second;
    }
    ObjPtr dict_of(const ObjPtr& o) {
        WAN_CHECK(o->kind == Obj::Kind::Dict, "%s: SETITEM on a non-dict", ctx_.c_str());
        return o;
    }
    void add_item(const ObjPtr& d, const ObjPtr& k, const ObjPtr& v) {
        d->dict.emplace_back(k, v);
        nest(d, k);
        nest(d, v);
    }
    ObjPtr list_of(const ObjPtr& o) {
        WAN_CHECK(o->kind == Obj::Kind::List, "%s: APPEND on a non-list", ctx_.c_str());
        return o;
    }
    ObjPtr resolve_global(const std::string& module, const std::string& name) {
        auto o = make(Obj::Kind::Global);
        if (module == "collections" && name == "OrderedDict") {
            o->global = Global::OrderedDict;
        } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
            o->global = Global::RebuildTensorV2;
        } else if (module == "torch._utils" && name == "_rebuild_parameter") {
            o->global = Global::RebuildParameter;
        } else if (module == "torch" && storage_dtype_from_name(name, &o->storage_dtype)) {
            o->global = Global::Storage;
        } else {
            WAN_THROW("%s: pickle global '%s.%s' is not allowed (only state dicts of tensors are read; "
                      "nothing in the file is executed)", ctx_.c_str(), module.c_str(), name.c_str());
        }
        return o;
    }
    ObjPtr persistent_load(const ObjPtr& pid) {
        // ('storage', <torch.XStorage>, key, location, numel)
        WAN_CHECK(pid->kind == Obj::Kind::Tuple && pid->items.size() == 5 && pid->items[0]->kind == Obj::Kind::Str &&
                      pid->items[0]->s == "storage" && pid->items[1]->kind == Obj::Kind::Global &&
                      pid->items[1]->global == Global::Storage && pid->items[2]->kind == Obj::Kind::Str &&
                      pid->items[4]->kind == Obj::Kind::Int,
                  "%s: unexpected persistent id (expected a torch storage reference)", ctx_.c_str());
        auto o = make(Obj::Kind::Storage);
        o->storage = std::make_shared<StorageRef>(StorageRef{pid->items[1]->storage_dtype, pid->items[2]->s, pid->items[4]->i});
        return o;
    }
    std::vector<int64_t> int_tuple(const ObjPtr& t, const char* what) {
        WAN_CHECK(t->kind == Obj::Kind::Tuple, "%s: tensor %s is not a tuple", ctx_.c_str(), what);
        std::vector<int64_t> v;
        for (const auto& x : t->items) {
            WAN_CHECK(x->kind == Obj::Kind::Int, "%s: tensor %s holds a non-integer", ctx_.c_str(), what);
            v.push_back(x->i);
        }
        return v;
    }
    ObjPtr reduce(const ObjPtr& fn, const ObjPtr& args) {
        WAN_CHECK(fn->kind == Obj::Kind::Global && args->kind == Obj::Kind::Tuple, "%s: REDUCE of a non-global", ctx_.c_str());
        switch (fn->global) {
            case Global::OrderedDict: return make(Obj::Kind::Dict);
            case Global::RebuildTensorV2: {
                WAN_CHECK(args->items.size() >= 4 && args->items[0]->kind == Obj::Kind::Storage &&
                              args->items[1]->kind == Obj::Kind::Int,
                          "%s: malformed _rebuild_tensor_v2 arguments", ctx_.c_str());
                auto o = make(Obj::Kind::Tensor);
                o->tensor = std::make_shared<TensorRef>(TensorRef{*args->items[0]->storage, args->items[1]->i,
                                                                  int_tuple(args->items[2], "size"),
                                                                  int_tuple(args->items[3], "stride")});
                WAN_CHECK(o->tensor->size.size() == o->tensor->stride.size(), "%s: tensor size/stride rank differ", ctx_.c_str());
                return o;
            }
            case Global::RebuildParameter:
                WAN_CHECK(!args->items.empty() && args->items[0]->kind == Obj::Kind::Tensor,
                          "%s: malformed _rebuild_parameter arguments", ctx_.c_str());
                return args->items[0];
            case Global::Storage: break;
        }
        WAN_THROW("%s: a storage type cannot be called", ctx_.c_str());
    }

    const uint8_t* begin_;
    const uint8_t* p_;
    const uint8_t* end_;
    std::string ctx_;
    std::vector<std::unique_ptr<Obj>> arena_;  // owns every object; freed flat, in one loop
    std::vector<ObjPtr> stack_;
    std::unordered_map<uint64_t, ObjPtr> memo_;
};

// Bytes of a storage of `numel` elements, checked: both numbers come from the pickle.
uint64_t checked_storage_bytes(const std::string& path, const std::string& tensor, const StorageRef& s) {
    uint64_t bytes = 0;
    WAN_CHECK(s.numel >= 0 && checked_mul(static_cast<uint64_t>(s.numel), element_size(s.dtype), &bytes),
              "%s: tensor '%s': storage of %lld elements of %s has no valid byte size", path.c_str(), tensor.c_str(),
              static_cast<long long>(s.numel), c10::toString(s.dtype));
    return bytes;
}

// The view (offset, sizes, strides) must stay inside its storage, and its element count must fit in 64 bits;
// every product and sum is checked since all of them come from the file.
void check_view_in_storage(const std::string& path, const std::string& tensor, const TensorRef& t) {
    WAN_CHECK(t.offset >= 0, "%s: tensor '%s': negative storage offset %lld", path.c_str(), tensor.c_str(),
              static_cast<long long>(t.offset));
    bool empty = false;
    for (size_t d = 0; d < t.size.size(); ++d) {
        WAN_CHECK(t.size[d] >= 0 && t.stride[d] >= 0, "%s: tensor '%s': negative size or stride", path.c_str(),
                  tensor.c_str());
        empty = empty || t.size[d] == 0;
    }
    if (empty) return;
    int64_t last = t.offset, numel = 1;
    bool fits = true;
    for (size_t d = 0; d < t.size.size(); ++d) {
        int64_t reach = 0;
        fits = fits && checked_mul(t.size[d] - 1, t.stride[d], &reach) && checked_add(last, reach, &last) &&
               checked_mul(numel, t.size[d], &numel);
    }
    WAN_CHECK(fits && last < t.storage.numel,
              "%s: tensor '%s': view (offset %lld, shape/stride) reaches past its storage of %lld elements",
              path.c_str(), tensor.c_str(), static_cast<long long>(t.offset), static_cast<long long>(t.storage.numel));
}

}  // namespace

void read_pth_into(TensorStore::Impl& impl, const std::string& path) {
    auto file = std::make_shared<MappedFile>(path);
    WAN_CHECK(file->size() >= 4 && std::memcmp(file->data(), "PK\x03\x04", 4) == 0,
              "%s: not a torch.save zip archive (no 'PK\\x03\\x04' signature); legacy pickled .pth files are not read",
              path.c_str());
    std::vector<ZipEntry> entries = read_zip_directory(*file);
    const ZipEntry* pkl = nullptr;
    for (const auto& e : entries) {
        if (e.name == "data.pkl" || (e.name.size() > 9 && e.name.compare(e.name.size() - 9, 9, "/data.pkl") == 0)) {
            pkl = &e;
            break;
        }
    }
    WAN_CHECK(pkl != nullptr, "%s: zip entry '<archive>/data.pkl' missing: not a torch.save archive", path.c_str());
    const std::string prefix = pkl->name.substr(0, pkl->name.size() - 8);  // "<stem>/"
    std::unordered_map<std::string, const ZipEntry*> by_name;
    for (const auto& e : entries) by_name[e.name] = &e;

    Unpickler up(file->data() + pkl->data_offset, pkl->size, path + ": " + pkl->name);
    ObjPtr root = up.run();
    WAN_CHECK(root->kind == Obj::Kind::Dict, "%s: data.pkl does not hold a state dict (dict of tensors)", path.c_str());
    for (const auto& [k, v] : root->dict) {
        WAN_CHECK(k->kind == Obj::Kind::Str, "%s: state dict key is not a string", path.c_str());
        WAN_CHECK(v->kind == Obj::Kind::Tensor, "%s: state dict entry '%s' is not a tensor", path.c_str(), k->s.c_str());
        const TensorRef& t = *v->tensor;
        const std::string entry_name = prefix + "data/" + t.storage.key;
        auto it = by_name.find(entry_name);
        WAN_CHECK(it != by_name.end(), "%s: tensor '%s': zip entry '%s' missing", path.c_str(), k->s.c_str(),
                  entry_name.c_str());
        const uint64_t storage_bytes = checked_storage_bytes(path, k->s, t.storage);
        WAN_CHECK(it->second->size >= storage_bytes,
                  "%s: tensor '%s': storage '%s' has %llu bytes, %lld elements of %s need %llu", path.c_str(),
                  k->s.c_str(), entry_name.c_str(), static_cast<unsigned long long>(it->second->size),
                  static_cast<long long>(t.storage.numel), c10::toString(t.storage.dtype),
                  static_cast<unsigned long long>(storage_bytes));
        check_view_in_storage(path, k->s, t);
        TensorInfo info;
        info.name = k->s;
        info.dtype = t.storage.dtype;
        info.shape = t.size;
        info.strides = t.stride;
        info.storage_offset = t.offset;
        info.data_offset = it->second->data_offset;
        info.data_bytes = storage_bytes;
        info.file = path;
        impl.add(StoreEntry{std::move(info), file});
    }
}

// ---- .pth writer ---------------------------------------------------------------------------------------

namespace {

uint32_t crc32_update(uint32_t crc, const uint8_t* p, size_t n) {
    static uint32_t table[256];
    static bool init = [] {
        for (uint32_t i = 0; i < 256; ++i) {
            uint32_t c = i;
            for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }
        return true;
    }();
    (void)init;
    crc = ~crc;
    for (size_t i = 0; i < n; ++i) crc = table[(crc ^ p[i]) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

struct PickleWriter {
    std::string out;
    void op(uint8_t c) { out.push_back(static_cast<char>(c)); }
    void u32(uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }
    void str(const std::string& s) { op('X'); u32(static_cast<uint32_t>(s.size())); out += s; }
    void global(const char* module, const char* name) { op('c'); out += module; out += '\n'; out += name; out += '\n'; }
    void integer(int64_t v) {
        if (v >= 0 && v < 256) { op('K'); op(static_cast<uint8_t>(v)); }
        else if (v >= INT32_MIN && v <= INT32_MAX) { op('J'); int32_t x = static_cast<int32_t>(v); out.append(reinterpret_cast<const char*>(&x), 4); }
        else { op(0x8a); op(8); out.append(reinterpret_cast<const char*>(&v), 8); }
    }
    void int_tuple(const std::vector<int64_t>& v) {
        if (v.empty()) { op(')'); return; }
        op('(');
        for (int64_t x : v) integer(x);
        op('t');
    }
};

const char* storage_name(at::ScalarType t) {
    switch (t) {
        case at::kFloat: return "FloatStorage";
        case at::kDouble: return "DoubleStorage";
        case at::kHalf: return "HalfStorage";
        case at::kBFloat16: return "BFloat16Storage";
        case at::kLong: return "LongStorage";
        case at::kInt: return "IntStorage";
        case at::kShort: return "ShortStorage";
        case at::kChar: return "CharStorage";
        case at::kByte: return "ByteStorage";
        case at::kBool: return "BoolStorage";
        default: WAN_THROW("dtype %s cannot be written to .pth", c10::toString(t));
    }
}

struct ZipWriter {
    AtomicFileWriter& f;
    struct Central { std::string name; uint32_t crc; uint64_t size; uint64_t local; };
    std::vector<Central> central;

    // Stored entry; data aligned to 64 bytes with a padding extra field, as torch.save's writer does.
    void add(const std::string& name, const void* data, uint64_t size) {
        uint64_t local = f.position();
        uint32_t crc = crc32_update(0, static_cast<const uint8_t*>(data), size);
        const bool z64 = size >= 0xFFFFFFFFull || local >= 0xFFFFFFFFull;
        uint64_t header_end = local + 30 + name.size() + 4 + (z64 ? 20 : 0);
        uint16_t pad = static_cast<uint16_t>((64 - (header_end % 64)) % 64);
        std::string h;
        auto put16 = [&](uint16_t v) { h.append(reinterpret_cast<const char*>(&v), 2); };
        auto put32 = [&](uint32_t v) { h.append(reinterpret_cast<const char*>(&v), 4); };
        auto put64 = [&](uint64_t v) { h.append(reinterpret_cast<const char*>(&v), 8); };
        put32(0x04034b50u); put16(z64 ? 45 : 20); put16(0); put16(0); put16(0); put16(0x21);  // version, flags, stored, time, date
        put32(crc); put32(z64 ? 0xFFFFFFFFu : static_cast<uint32_t>(size)); put32(z64 ? 0xFFFFFFFFu : static_cast<uint32_t>(size));
        put16(static_cast<uint16_t>(name.size()));
        put16(static_cast<uint16_t>((z64 ? 20 : 0) + 4 + pad));
        h += name;
        if (z64) { put16(0x0001); put16(16); put64(size); put64(size); }
        put16(0x4246); put16(pad);  // "FB" padding field
        h.append(pad, 'Z');
        f.write(h.data(), h.size());
        if (size > 0) f.write(data, size);
        central.push_back({name, crc, size, local});
    }

    void finish() {
        uint64_t cd_start = f.position();
        for (const auto& c : central) {
            std::string h;
            auto put16 = [&](uint16_t v) { h.append(reinterpret_cast<const char*>(&v), 2); };
            auto put32 = [&](uint32_t v) { h.append(reinterpret_cast<const char*>(&v), 4); };
            auto put64 = [&](uint64_t v) { h.append(reinterpret_cast<const char*>(&v), 8); };
            const bool z64 = c.size >= 0xFFFFFFFFull || c.local >= 0xFFFFFFFFull;
            put32(0x02014b50u); put16(z64 ? 45 : 20); put16(z64 ? 45 : 20); put16(0); put16(0); put16(0); put16(0x21);
            put32(c.crc); put32(z64 ? 0xFFFFFFFFu : static_cast<uint32_t>(c.size)); put32(z64 ? 0xFFFFFFFFu : static_cast<uint32_t>(c.size));
            put16(static_cast<uint16_t>(c.name.size())); put16(z64 ? 28 : 0); put16(0); put16(0); put16(0); put32(0);
            put32(z64 ? 0xFFFFFFFFu : static_cast<uint32_t>(c.local));
            h += c.name;
            if (z64) { put16(0x0001); put16(24); put64(c.size); put64(c.size); put64(c.local); }
            f.write(h.data(), h.size());
        }
        uint64_t cd_end = f.position();
        uint64_t n = central.size();
        std::string h;
        auto put16 = [&](uint16_t v) { h.append(reinterpret_cast<const char*>(&v), 2); };
        auto put32 = [&](uint32_t v) { h.append(reinterpret_cast<const char*>(&v), 4); };
        auto put64 = [&](uint64_t v) { h.append(reinterpret_cast<const char*>(&v), 8); };
        const bool z64 = cd_end >= 0xFFFFFFFFull || n >= 0xFFFF;
        if (z64) {
            put32(0x06064b50u); put64(44); put16(45); put16(45); put32(0); put32(0);
            put64(n); put64(n); put64(cd_end - cd_start); put64(cd_start);
            put32(0x07064b50u); put32(0); put64(cd_end); put32(1);
        }
        put32(0x06054b50u); put16(0); put16(0);
        put16(z64 ? 0xFFFF : static_cast<uint16_t>(n)); put16(z64 ? 0xFFFF : static_cast<uint16_t>(n));
        put32(z64 ? 0xFFFFFFFFu : static_cast<uint32_t>(cd_end - cd_start));
        put32(z64 ? 0xFFFFFFFFu : static_cast<uint32_t>(cd_start));
        put16(0);
        f.write(h.data(), h.size());
    }
};

}  // namespace

void save_pth(const std::string& path, const NamedTensors& tensors) {
    std::string stem = path;
    auto slash = stem.find_last_of('/');
    if (slash != std::string::npos) stem = stem.substr(slash + 1);
    auto dot = stem.find_last_of('.');
    if (dot != std::string::npos && dot > 0) stem = stem.substr(0, dot);

    std::vector<at::Tensor> cpu;
    PickleWriter pw;
    pw.op(0x80); pw.op(2);
    pw.global("collections", "OrderedDict");
    pw.op(')'); pw.op('R');
    pw.op('(');
    for (size_t k = 0; k < tensors.size(); ++k) {
        at::Tensor c = tensors[k].second.detach().to(at::kCPU).contiguous();
        pw.str(tensors[k].first);
        pw.global("torch._utils", "_rebuild_tensor_v2");
        pw.op('(');
        pw.op('(');
        pw.str("storage");
        pw.global("torch", storage_name(c.scalar_type()));
        pw.str(std::to_string(k));
        pw.str("cpu");
        pw.integer(c.numel());
        pw.op('t');
        pw.op('Q');
        pw.integer(0);
        pw.int_tuple(c.sizes().vec());
        pw.int_tuple(c.strides().vec());
        pw.op(0x89);
        pw.global("collections", "OrderedDict");
        pw.op(')'); pw.op('R');
        pw.op('t');
        pw.op('R');
        cpu.push_back(std::move(c));
    }
    pw.op('u');
    // torch.save attaches the module versions as `_metadata` through BUILD; an empty table is valid.
    pw.op('}');
    pw.str("_metadata");
    pw.global("collections", "OrderedDict");
    pw.op(')'); pw.op('R');
    pw.op('s');
    pw.op('b');
    pw.op('.');

    AtomicFileWriter out(path);
    ZipWriter zip{out, {}};
    zip.add(stem + "/data.pkl", pw.out.data(), pw.out.size());
    static const char kByteorder[] = "little";
    zip.add(stem + "/byteorder", kByteorder, 6);
    for (size_t k = 0; k < cpu.size(); ++k) {
        zip.add(stem + "/data/" + std::to_string(k), cpu[k].data_ptr(),
                static_cast<uint64_t>(cpu[k].numel()) * element_size(cpu[k].scalar_type()));
    }
    zip.add(stem + "/version", "3\n", 2);
    zip.finish();
    out.commit();
}

}  // namespace wan::io
