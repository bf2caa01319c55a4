require "x-unknown-extension";
