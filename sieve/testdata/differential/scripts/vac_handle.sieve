require "vacation";
vacation :handle "h1" :subject "Away" "Away one.";
