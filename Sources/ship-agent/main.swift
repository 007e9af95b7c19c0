import Foundation
import Hooks

print("ship-agent")
