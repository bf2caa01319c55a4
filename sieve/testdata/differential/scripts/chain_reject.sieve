require "reject";
reject "not here";
