require "include";
include "does_not_exist";
