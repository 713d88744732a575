// ipcxx::Error construction: formats "call(object)" in front of the errno text.
#include "ipcxx/error.hpp"

namespace ipcxx {

namespace {
std::string describe(std::string_view call, std::string_view object) {
  std::string text(call);
  text += '(';
  text += object;
  text += ')';
  return text;
}
}  // namespace

Error::Error(int errno_value, std::string_view call, std::string_view object)
    : std::system_error(errno_value, std::generic_category(), describe(call, object)),
      call_(call),
      object_(object) {}

}  // namespace ipcxx
