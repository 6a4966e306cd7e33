port module Main exposing (main)

{-| The memo's demo app: counts events and answers each one with the count
and the event itself, echoed as received.

    event:    anything (a string by default, any JSON with --json-events)
    response: {"count": 1, "event": <the event>}
    flags:    {"start": 41} starts counting at 41 (anything else: 0)

-}

import Json.Decode as Decode
import Json.Encode as Encode


port onEvent : (Decode.Value -> msg) -> Sub msg


port respond : Encode.Value -> Cmd msg


type alias Model =
    Int


type Msg
    = Event Decode.Value


main : Program Decode.Value Model Msg
main =
    Platform.worker
        { init = init
        , update = update
        , subscriptions = \_ -> onEvent Event
        }


init : Decode.Value -> ( Model, Cmd Msg )
init flags =
    ( Decode.decodeValue (Decode.field "start" Decode.int) flags
        |> Result.withDefault 0
    , Cmd.none
    )


update : Msg -> Model -> ( Model, Cmd Msg )
update (Event event) count =
    let
        next =
            count + 1
    in
    ( next
    , respond (Encode.object [ ( "count", Encode.int next ), ( "event", event ) ])
    )
