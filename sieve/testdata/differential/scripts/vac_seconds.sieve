require "vacation-seconds";
vacation :seconds 172800 :subject "Gone" "Back later.";
