// ipcxx::Error carries errno, the call and the object, and formats what() from them.
#include "ipcxx/error.hpp"

#include <gtest/gtest.h>

#include <cerrno>

TEST(Error, WhatNamesTheCallTheObjectAndTheErrnoText) {
  const ipcxx::Error error(ENOENT, "sem_open", "/jobs");
  EXPECT_STREQ(error.what(), "sem_open(/jobs): No such file or directory");
  EXPECT_EQ(error.errno_value(), ENOENT);
  EXPECT_EQ(error.call(), "sem_open");
  EXPECT_EQ(error.object(), "/jobs");
  EXPECT_EQ(error.code(), std::errc::no_such_file_or_directory);
}
