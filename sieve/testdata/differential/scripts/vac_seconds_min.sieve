require "vacation-seconds";
vacation :seconds 60 :subject "Gone" "Back later.";
