require "include";
include "sub/dir";
