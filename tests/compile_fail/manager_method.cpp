// Must NOT compile, once per case (-DCASE_<name>): a proxy calling a method its served type does
// not have. Each method is named once, in its type's method set (mproc/detail/manager_methods.hpp),
// and a proxy calls it by that name only (issue 15, item 7: the names were string literals typed
// on both sides, so a misspelt one was found at run time, as the server's "no method" error).
#include <mproc/managers.hpp>

// A proxy of one's own, as a user type's proxy would be written if it reached for the protected
// call: the ListProxy's own methods all go through the same invoke.
struct MisspeltList : mproc::managers::ListProxy<int> {
    void add(int x) {
#if defined(CASE_misspelt)
        invoke<void>(Method::apend, x);
#elif defined(CASE_other_type)
        invoke<void>(mproc::managers::detail::DictMethod::set, x);
#elif defined(CASE_by_name)
        invoke<void>("append", x);
#else
#error "no CASE_ given"
#endif
    }
};

int main() {
    MisspeltList list;
    list.add(1);
}
