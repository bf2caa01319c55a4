require "vacation";
vacation :days 3 :subject "Away" "Back soon.";
