# Variables belong to one script of a chain.
require "variables";
set "box" "Lists";
