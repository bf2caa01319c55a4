require "fileinto";
if size :over 1M { fileinto "Huge"; }
if size :under 1G { fileinto "UnderG"; }
if size :over 21302 { fileinto "Over21302"; }
if size :under 21303 { fileinto "Under21303"; }
