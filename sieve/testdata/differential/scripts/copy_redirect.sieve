require "copy";
redirect :copy "forward@example.net";
