require "include";
include "loop_b";
