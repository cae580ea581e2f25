#pragma once

// GLib keeps user data as a bare pointer and gives it back to a destroy notify: these two are
// the only places where such ownership changes hands.

#include <glib.h>

#include <memory>
#include <utility>

namespace peernet::lib {

/// A new T, handed to GLib as user data; glib_release<T> is its destroy notify.
template <class T, class... Args>
gpointer glib_owned(Args&&... args) {
  return std::make_unique<T>(std::forward<Args>(args)...).release();
}

template <class T>
void glib_release(gpointer data) {
  const std::unique_ptr<T> owned(static_cast<T*>(data));
}

/// glib_release<T> as a GClosureNotify, for g_signal_connect_data.
template <class T>
void glib_release_closure(gpointer data, GClosure* /*closure*/) {
  glib_release<T>(data);
}

}  // namespace peernet::lib
