#pragma once

#include <variant>

#include "common/result.h"
#include "peernet/error.h"

namespace peernet::lib {

/// A value or the Error that prevented it: what libpeernet's asynchronous steps hand on.
template <typename T>
using Result = BasicResult<T, Error>;

/// Success or an Error, with no value.
using Status = Result<std::monostate>;

}  // namespace peernet::lib
