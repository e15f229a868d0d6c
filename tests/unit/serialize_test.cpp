// Serialization: what travels, what is refused, and that bad bytes never become garbage.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#include <mproc/detail/archive.hpp>
#include <mproc/serialize.hpp>

#include "spare_bytes.hpp"
// Smart pointers travel once cereal's support for them is included (mproc's headers leave it
// out for compile time; compile_fail/unsendable.cpp checks the refusal without it).
#include <cereal/types/memory.hpp>

namespace {

struct Pod {  // trivially copyable, no serialize(): copied as bytes
    int a;
    double b;
    char c[3];
    bool operator==(const Pod&) const = default;
};

struct Person {  // a user type in cereal's style
    std::string name;
    std::vector<int> scores;
    std::optional<Pod> pod;
    template <class Ar>
    void serialize(Ar& ar) {
        ar(name, scores, pod);
    }
    bool operator==(const Person&) const = default;
};

enum class Color : std::uint8_t { Red = 1, Blue = 7 };

template <class T>
void expect_roundtrip(const T& x) {
    EXPECT_EQ(mproc::loads<T>(mproc::dumps(x)), x);
}

TEST(Serialize, ArithmeticAndStrings) {
    expect_roundtrip(42);
    expect_roundtrip(-7ll);
    expect_roundtrip(3.25);
    expect_roundtrip(true);
    expect_roundtrip('x');
    expect_roundtrip(std::string("hello\0world", 11));
    expect_roundtrip(std::string());
    expect_roundtrip(Color::Blue);
}

// Long strings take another path (their buffers asked for in huge pages, reserve_bytes): the
// bytes and the length come through, in a struct beside other members, and a string that
// already held something is replaced, not appended to.
TEST(Serialize, LongStringsPastTheHugePageThreshold) {
    std::string big(std::size_t{24} << 20, '\0');
    for (std::size_t i = 0; i < big.size(); i += 4099) big[i] = static_cast<char>(i * 13);
    big.back() = 'z';
    expect_roundtrip(big);
    expect_roundtrip(std::make_tuple(std::string("before"), big, 7));
    std::string wire;
    {
        mproc::detail::OutputArchive out(wire);
        out(big);
    }
    std::string into = "something already there";
    mproc::detail::InputArchive in(wire);
    in(into);
    EXPECT_EQ(into, big);
}

TEST(Serialize, ReserveBytesKeepsTheContentsAndGrowsGeometrically) {
    for (const std::size_t n : {std::size_t{100}, std::size_t{9} << 20}) {
        std::string s = "kept bytes";
        mproc::detail::reserve_bytes(s, n);
        EXPECT_EQ(s, "kept bytes");
        EXPECT_GE(s.capacity(), n);
        const std::size_t had = s.capacity();
        mproc::detail::reserve_bytes(s, had + 1);  // one byte more doubles, as append would
        EXPECT_GE(s.capacity(), 2 * had);
        EXPECT_EQ(s, "kept bytes");
    }
}

// A large buffer the library is done with is kept (spare_bytes.hpp): the next reserve_bytes of
// a like size gets the same memory; one of less than half its size, or a buffer under 64 MiB,
// does not take part.
TEST(Serialize, ALargeBufferRecycledServesTheNextOfItsSize) {
    const std::size_t n = mproc::detail::kSpareFrom + 12345;
    std::string first;
    mproc::detail::reserve_bytes(first, n);
    first.assign(n, 'a');
    const char* memory = first.data();
    mproc::detail::recycle_bytes(std::move(first));
    EXPECT_TRUE(first.empty());

    std::string shorter = "kept";
    mproc::detail::reserve_bytes(shorter, n / 3);  // less than half the spare: a buffer of its own
    EXPECT_NE(shorter.data(), memory);
    EXPECT_EQ(shorter, "kept");

    std::string again = "head";
    mproc::detail::reserve_bytes(again, n + 100);  // a few bytes more: the spare still fits
    EXPECT_EQ(again.data(), memory);
    EXPECT_EQ(again, "head");  // what the string held is kept, not the spare's old bytes
    EXPECT_GE(again.capacity(), n + 100);

    std::string next;
    mproc::detail::reserve_bytes(next, n);  // the spare was taken: nothing left to hand out
    EXPECT_NE(next.data(), memory);

    const char* next_memory = next.data();
    mproc::detail::recycle_bytes(std::move(next));
    std::string small(std::size_t{1} << 20, 'b');
    mproc::detail::recycle_bytes(std::move(small));  // under 64 MiB: freed, the spare stays
    EXPECT_TRUE(small.empty());
    std::string last;
    mproc::detail::reserve_bytes(last, n);
    EXPECT_EQ(last.data(), next_memory);
}

// The spare keeps the size it was recycled with, and its next user overwrites it whole: a
// message received into it (resize_for_overwrite) or a long string decoded into it
// (assign_bytes) takes the same memory and ends with its own bytes only, none of the old.
TEST(Serialize, TheSpareServesAMessageOrADecodedStringWithOnlyItsOwnBytes) {
    const std::size_t n = mproc::detail::kSpareFrom + 4321;
    std::string stale;
    mproc::detail::reserve_bytes(stale, n + 999);  // as the library's buffers are made
    stale.assign(n + 999, 's');
    const char* memory = stale.data();
    mproc::detail::recycle_bytes(std::move(stale));

    std::string received = "old contents";
    mproc::detail::resize_for_overwrite(received, n);
    EXPECT_EQ(received.data(), memory);
    ASSERT_EQ(received.size(), n);
    std::string none;  // the spare is taken: no memory held for a message this long
    EXPECT_FALSE(mproc::detail::resize_from_held(none, n));
    EXPECT_TRUE(none.empty());
    EXPECT_TRUE(mproc::detail::resize_from_held(received, n / 2));  // its own capacity serves
    EXPECT_EQ(received.data(), memory);
    EXPECT_EQ(received.size(), n / 2);

    std::string big(n - 7, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7 + 3);
    std::string wire;
    {
        mproc::detail::OutputArchive out(wire);
        out(big);
    }
    mproc::detail::recycle_bytes(std::move(received));
    std::string decoded = "something already there";
    mproc::detail::InputArchive in(wire);
    in(decoded);
    EXPECT_EQ(decoded.data(), memory);
    EXPECT_EQ(decoded, big);
}

TEST(Serialize, StandardContainers) {
    expect_roundtrip(std::vector<int>{1, 2, 3});
    expect_roundtrip(std::vector<std::string>{"a", "", "ccc"});
    expect_roundtrip(std::deque<double>{1.5, 2.5});
    expect_roundtrip(std::list<int>{4, 5});
    expect_roundtrip(std::map<std::string, int>{{"a", 1}, {"b", 2}});
    expect_roundtrip(std::unordered_map<int, std::string>{{1, "x"}, {2, "y"}});
    expect_roundtrip(std::set<int>{3, 1, 2});
    expect_roundtrip(std::array<int, 4>{1, 4, 9, 16});
    expect_roundtrip(std::vector<bool>{true, false, true});
    expect_roundtrip(std::vector<std::vector<int>>{{1}, {}, {2, 3}});
}

TEST(Serialize, PairTupleOptionalVariantChrono) {
    expect_roundtrip(std::pair<int, std::string>{1, "one"});
    expect_roundtrip(std::tuple<int, double, std::string>{1, 2.0, "three"});
    expect_roundtrip(std::optional<std::string>{"x"});
    expect_roundtrip(std::optional<int>{});
    expect_roundtrip(std::variant<int, std::string>{std::string("v")});
    expect_roundtrip(std::chrono::milliseconds(1500));
    expect_roundtrip(std::chrono::duration<double>(2.5));
}

// A tuple or pair is its elements, in order, nothing around them: the bytes cereal's tuple and
// pair functions wrote, which mproc's archives now write themselves (issue 18, compile time).
// Pinned so that a pool's arguments (always a tuple) keep their wire format.
TEST(Serialize, TuplesAndPairsAreTheirElementsInOrder) {
    const Person amy{"amy", {90, 85}, Pod{3, 4.0, {}}};
    std::string whole, parts;
    {
        mproc::detail::OutputArchive ar(whole);
        ar(std::tuple<int, std::string, Person>{7, "seven", amy}, std::pair<double, std::tuple<char>>{2.5, {'x'}});
    }
    {
        mproc::detail::OutputArchive ar(parts);
        ar(7, std::string("seven"), amy, 2.5, 'x');
    }
    EXPECT_EQ(whole, parts);
    std::tuple<int, std::string, Person> t;
    std::pair<double, std::tuple<char>> p;
    mproc::detail::InputArchive in(parts);
    in(t, p);
    EXPECT_EQ(t, std::make_tuple(7, std::string("seven"), amy));
    EXPECT_EQ(p.first, 2.5);
    EXPECT_EQ(std::get<0>(p.second), 'x');
    EXPECT_TRUE(in.rest().empty());
}

TEST(Serialize, TriviallyCopyableAndUserTypes) {
    expect_roundtrip(Pod{1, 2.5, {'a', 'b', 'c'}});
    expect_roundtrip(std::vector<Pod>{{1, 1.0, {}}, {2, 2.0, {'z', 0, 0}}});
    expect_roundtrip(Person{"amy", {90, 85}, Pod{3, 4.0, {}}});
    expect_roundtrip(std::map<std::string, Person>{{"bob", Person{"bob", {}, std::nullopt}}});
}

TEST(Serialize, SmartPointersWithCerealsMemoryHeader) {
    auto u = mproc::loads<std::unique_ptr<std::string>>(mproc::dumps(std::make_unique<std::string>("held")));
    ASSERT_TRUE(u);
    EXPECT_EQ(*u, "held");
    EXPECT_FALSE(mproc::loads<std::unique_ptr<int>>(mproc::dumps(std::unique_ptr<int>())));
    // Two owners of one object in one message arrive as two owners of one object, as pickle
    // keeps shared references within one dumps.
    auto shared = std::make_shared<std::vector<int>>(std::vector<int>{1, 2, 3});
    auto pair = mproc::loads<std::pair<std::shared_ptr<std::vector<int>>, std::shared_ptr<std::vector<int>>>>(
        mproc::dumps(std::make_pair(shared, shared)));
    ASSERT_TRUE(pair.first);
    EXPECT_EQ(pair.first, pair.second);
    EXPECT_EQ(*pair.first, (std::vector<int>{1, 2, 3}));
}

TEST(Serialize, ConceptSaysWhatCanTravel) {
    static_assert(mproc::serializable<int>);
    static_assert(mproc::serializable<Pod>);
    static_assert(mproc::serializable<Person>);
    static_assert(mproc::serializable<std::vector<std::string>>);
    static_assert(!mproc::serializable<int*>);
    static_assert(!mproc::serializable<std::string_view>);
    static_assert(!mproc::serializable<const char*>);
    SUCCEED();
}

// The members of plain structs are looked into, to any depth, for an address: a struct that
// carries a `const char*` compiled and was copied as bytes, and its task died of SIGSEGV under
// spawn (issue 14, section 3).
struct Labelled {
    const char* label;
    int n;
};
struct Wrapper {  // the pointer one level down
    int id;
    Labelled inner[2];
};
struct Referring {
    const int& r;
};
struct Viewing {
    std::string_view name;
};
struct Timed {  // a member with an explicit converting constructor is still seen
    std::chrono::milliseconds d;
    int n[4];
    Pod nested;
    Color color;
    bool operator==(const Timed&) const = default;
};
class Sealed {  // private members: mproc cannot see them
public:
    Sealed() = default;
    explicit Sealed(int v) : v_(v) {}
    int v() const { return v_; }
    bool operator==(const Sealed&) const = default;

private:
    int v_ = 0;
};
struct Derived : Pod {  // a base class: the members cannot be listed
    int extra;
};
union Either {
    int i;
    float f;
};
struct Declared {  // declared safe to copy as bytes by its author
    Declared() = default;
    explicit Declared(long v) : v_(v) {}
    long v_ = 0;
    bool operator==(const Declared&) const = default;

private:
    int unused_ = 0;
};

}  // namespace

template <>
inline constexpr bool mproc::copy_as_bytes<Declared> = true;

namespace {

TEST(Serialize, AddressesAreRefusedAtAnyDepth) {
    using mproc::detail::Refusal;
    using mproc::detail::verdict;
    static_assert(!mproc::serializable<Labelled>);
    static_assert(verdict<Labelled>::why == Refusal::address);
    static_assert(std::is_same_v<verdict<Labelled>::part, const char*>);
    static_assert(!mproc::serializable<Wrapper>);
    static_assert(std::is_same_v<verdict<Wrapper>::part, const char*>);
    static_assert(!mproc::serializable<std::vector<Labelled>>);
    static_assert(!mproc::serializable<std::map<int, std::vector<Wrapper>>>);
    static_assert(!mproc::serializable<std::tuple<int, std::string_view>>);
    static_assert(!mproc::serializable<std::pair<const char*, int>>);
    static_assert(!mproc::serializable<std::optional<int*>>);
    static_assert(!mproc::serializable<Referring>);
    static_assert(!mproc::serializable<Viewing>);
    static_assert(!mproc::serializable<std::array<const char*, 2>>);
    static_assert(!mproc::serializable<int* [3]>);
    static_assert(!mproc::serializable<std::reference_wrapper<int>>);
    SUCCEED();
}

TEST(Serialize, PlainStructsAreCopiedAsBytesOnceTheirMembersAreSeen) {
    using mproc::detail::Refusal;
    using mproc::detail::verdict;
    static_assert(mproc::detail::is_raw_copyable_v<Pod>);
    static_assert(mproc::detail::is_raw_copyable_v<Timed>);
    static_assert(mproc::detail::is_raw_copyable_v<int[3]>);
    static_assert(mproc::detail::is_raw_copyable_v<Declared>);
    static_assert(!mproc::detail::is_raw_copyable_v<Labelled>);
    // Types whose members cannot be listed are refused unless they say they are safe.
    static_assert(verdict<Sealed>::why == Refusal::opaque);
    static_assert(verdict<Derived>::why == Refusal::opaque);
    static_assert(verdict<Either>::why == Refusal::opaque);
    static_assert(verdict<std::vector<Sealed>>::why == Refusal::opaque);
    static_assert(std::is_same_v<verdict<std::vector<Sealed>>::part, Sealed>);
    static_assert(verdict<std::function<void()>>::why == Refusal::no_format);
    expect_roundtrip(Timed{std::chrono::milliseconds(250), {1, 2, 3, 4}, Pod{5, 6.5, {'x', 'y', 'z'}}, Color::Red});
    expect_roundtrip(std::vector<Timed>(3));
    expect_roundtrip(Declared(1234567890123L));
    // A plain struct travels as its bytes: the envelope, then exactly sizeof(T).
    const std::string bytes = mproc::dumps(Timed{});
    EXPECT_EQ(bytes.size(), mproc::detail::envelope_of<Timed>().size() + sizeof(Timed));
}

TEST(Serialize, WrongTypeNamesBothTypes) {
    const std::string bytes = mproc::dumps(std::vector<int>{1, 2});
    try {
        (void)mproc::loads<std::string>(bytes);
        FAIL() << "a vector<int> was read as a string";
    } catch (const mproc::SerializationError& e) {
        const std::string what = e.what();
        EXPECT_NE(what.find("std::vector<int"), std::string::npos) << what;
        EXPECT_NE(what.find("std::__cxx11::basic_string"), std::string::npos) << what;
    }
}

TEST(Serialize, TruncatedMessageIsAnError) {
    const std::string bytes = mproc::dumps(Person{"someone", {1, 2, 3, 4}, Pod{}});
    for (std::size_t n = 0; n < bytes.size(); ++n)
        EXPECT_THROW((void)mproc::loads<Person>(bytes.substr(0, n)), mproc::SerializationError) << n;
}

TEST(Serialize, HugeLengthIsRefusedBeforeAllocating) {
    // A header for vector<std::string> followed by a length of 2^60: a reader that believed it
    // would try to allocate exabytes.
    std::string bytes = mproc::dumps(std::vector<std::string>{});
    const std::uint64_t huge = 1ull << 60;
    bytes.replace(bytes.size() - sizeof huge, sizeof huge, reinterpret_cast<const char*>(&huge), sizeof huge);
    EXPECT_THROW((void)mproc::loads<std::vector<std::string>>(bytes), mproc::SerializationError);
}

TEST(Serialize, MalformedPayloadsAreErrors) {
    std::string b = mproc::dumps(true);
    b.back() = 5;  // a bool that is neither 0 nor 1
    EXPECT_THROW((void)mproc::loads<bool>(b), mproc::SerializationError);

    std::string v = mproc::dumps(std::variant<int, double>{1});
    const std::size_t at = v.size() - sizeof(int) - sizeof(std::int32_t);
    v[at] = 9;  // variant index out of range
    EXPECT_THROW((void)(mproc::loads<std::variant<int, double>>(v)), mproc::SerializationError);

    std::string extra = mproc::dumps(7) + "x";  // bytes left over
    EXPECT_THROW((void)mproc::loads<int>(extra), mproc::SerializationError);

    EXPECT_THROW((void)mproc::loads<int>(""), mproc::SerializationError);
}

TEST(Serialize, FuzzedBytesNeverCrash) {
    const std::string good = mproc::dumps(std::map<std::string, std::vector<Person>>{
        {"k", {Person{"n", {1, 2}, Pod{}}, Person{}}}});
    std::uint64_t seed = 12345;
    int errors = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string b = good;
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        const int flips = 1 + static_cast<int>(seed >> 61);
        for (int f = 0; f < flips; ++f) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            b[(seed >> 33) % b.size()] = static_cast<char>(seed >> 17);
        }
        try {
            (void)mproc::loads<std::map<std::string, std::vector<Person>>>(b);
        } catch (const mproc::SerializationError&) {
            ++errors;
        }
    }
    EXPECT_GT(errors, 0);  // most mutations are detected; none may crash or hang
}

}  // namespace
